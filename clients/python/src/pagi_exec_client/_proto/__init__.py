# SPDX-License-Identifier: Apache-2.0
"""Stubs generated from proto/tools.proto by clients/python/generate_stubs.py; do not edit them."""
