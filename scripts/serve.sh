#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command from a fresh Debian 12 machine to a running server with the embedded default
# policy: installs what is missing, builds, starts apps/tools-server in the foreground.
# Configuration comes from the environment (see README); extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec ./build/apps/tools-server/tools-server "$@"
