#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages pagi-exec builds, tests and runs with. Idempotent: does nothing
# when everything is present.
set -euo pipefail

packages=(
  meson ninja-build pkg-config g++
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libexpected-dev libcli11-dev doctest-dev libbenchmark-dev
  bubblewrap libseccomp-dev libtomlplusplus-dev nlohmann-json3-dev openssl libssl-dev
  libsqlite3-dev  # the execution store's SQLite backend (TOOLS_HISTORY=sqlite:...)
  libpqxx-dev  # the execution store's PostgreSQL backend (TOOLS_HISTORY=postgresql://...)
  # The tests' throw-away PostgreSQL (tests/support/postgres_cluster.hpp: initdb in a temporary
  # folder, a free loopback port). The package's own 'main' cluster is not used: in a container
  # policy-rc.d keeps it from starting, and where it does start it holds 5432, which no test takes.
  postgresql
  python3-grpcio python3-protobuf python3-venv python3-wheel  # python3-venv/-wheel: the client package's test
  grpc-proto  # health and reflection .proto files for the tests' standard clients
  libsystemd-dev help2man  # the server's sd_notify (deploy/systemd); man pages from --help
  python3-prometheus-client  # the metrics test's text parser
  python3-kubernetes python3-yaml  # the schema check of deploy/kubernetes (its client's models)
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and clang's sanitizer runtimes
  curl iproute2  # the egress test: curl inside sandboxes, a veth pair to its upstream namespace
  libboost1.81-dev  # the egress proxy and the metrics listener: Boost.Asio event loops, Boost.Beast for HTTP
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
