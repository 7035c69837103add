#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the compatibility suite's npm packages (@grpc/grpc-js, @grpc/proto-loader, pinned in
# package-lock.json) into tests/compat/node_modules with `npm ci`. Idempotent: does nothing when the
# installed tree was made from the same lock file. Needs node and npm (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.pagi-exec-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
echo "installing the compatibility suite's npm packages (npm ci in tests/compat)"
# --ignore-scripts: no package's install script runs as root (protobufjs's only checks versions).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
