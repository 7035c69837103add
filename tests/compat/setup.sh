#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prepares the compatibility suite (tests/compat), once; scripts/test.sh runs it. Idempotent:
#  - node and npm: Debian's nodejs and npm when `node` is missing (a node from elsewhere, e.g.
#    NodeSource, whose nodejs package brings its own npm, is used as it is);
#  - @grpc/grpc-js and @grpc/proto-loader, pinned by package-lock.json, into tests/compat/node_modules
#    with `npm ci`; skipped when that tree was made from the same lock file.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -ne 0 ]; then
  echo "installing: ${missing[*]} (for the compatibility suite)"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp=node_modules/.pagi-exec-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
echo "installing the compatibility suite's npm packages (npm ci in tests/compat)"
# --ignore-scripts: no package's install script runs (protobufjs's only checks versions).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
