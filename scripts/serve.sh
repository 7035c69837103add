#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command from a fresh Debian 12 machine to a running server with the embedded default
# policy: installs what is missing, builds, starts apps/tools-server in the foreground.
# Configuration comes from the environment (see README); extra arguments go to the server.
# By default it serves 127.0.0.1:50054 without authentication, with the strongest isolation that
# works here; serving other machines needs TOOLS_AUTH (or TOOLS_AUTH=none on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec ./build/apps/tools-server/tools-server "$@"
