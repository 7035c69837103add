#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command from a fresh Debian 12 machine to a running server with the embedded default
# policy: installs what is missing, builds only what serving needs (tools-server and the
# pagi-spawner it execs; not the test suite), starts tools-server in the foreground.
# Everything before the server starts goes to stderr, so the first line on stdout is the server's
# "listening on <address>".
# Configuration comes from the environment (see README); extra arguments go to the server.
# By default it serves 127.0.0.1:50054 without authentication, with the strongest isolation that
# works here; serving other machines needs TOOLS_AUTH (or TOOLS_AUTH=none on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  bash scripts/install-deps.sh
  if [ ! -f build/build.ninja ]; then
    meson setup build --wrap-mode=nodownload -Dwerror=true
  fi
  ninja -C build apps/tools-server/tools-server apps/pagi-spawner/pagi-spawner
} >&2
exec ./build/apps/tools-server/tools-server "$@"
