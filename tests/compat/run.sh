#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the compatibility suite (compat_test.js) for one isolation mode; skipped (77) without node.
node=$(command -v node) || {
  echo "SKIP: node is not installed (tests/compat/setup.sh, which scripts/test.sh runs, installs nodejs and npm, then the npm packages)"
  exit 77
}
exec "$node" "$(dirname "$0")/compat_test.js" "$@"
