#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the library into a scratch root and builds a host program against it with nothing but
# `pkg-config --cflags --libs pagi_exec`; checks that the public headers pull in no grpc/protobuf.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_dir" --no-rebuild --quiet --destdir "$scratch/root" >/dev/null
pcdir=$(dirname "$(find "$scratch/root" -name pagi_exec.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$scratch/root
flags=$(pkg-config --cflags --libs pagi_exec)
echo "pkg-config: $flags"

# The project's warnings (meson.build) but for -Wno-missing-field-initializers: a header that warns fails.
warnings="-Wall -Wextra -Wpedantic -Wshadow -Wswitch-enum -Wconversion -Wsign-conversion -Wnon-virtual-dtor -Werror"
g++ -std=c++20 $warnings "$source_dir/tests/consumer/consumer.cpp" $flags -o "$scratch/consumer"
"$scratch/consumer"

# The public headers must not reach grpc or protobuf, even transitively.
if g++ -std=c++20 -E "$source_dir/tests/consumer/consumer.cpp" $(pkg-config --cflags pagi_exec) |
   grep -E '^# [0-9]+ "[^"]*(grpc|google/protobuf)' | head -3 | grep .; then
  echo "FAIL: public headers include grpc or protobuf" >&2
  exit 1
fi
echo "consumer built and ran against the installed library"
