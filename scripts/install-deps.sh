#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages pagi-exec builds, tests and runs with, and the compatibility
# suite's npm packages. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
  meson ninja-build pkg-config g++
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libexpected-dev libcli11-dev doctest-dev
  bubblewrap libseccomp-dev libtomlplusplus-dev nlohmann-json3-dev openssl libssl-dev
  python3-grpcio python3-protobuf
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The compatibility suite (tests/compat) is a Node client: Debian's nodejs and npm, unless a node
# is already installed (e.g. from NodeSource, whose nodejs package brings its own npm).
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -ne 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
  else
    sudo=
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The suite's npm packages, pinned by tests/compat/package-lock.json (once; skipped when current).
# Without them (no network to the npm registry) the compat tests skip and say why; nothing else
# depends on them, so a failure here does not stop the build.
bash "$(dirname "$0")/../tests/compat/setup.sh" ||
  echo "WARNING: npm ci in tests/compat failed: the compat_* tests will be skipped" >&2
