#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Regenerates the checked-in stubs of proto/tools.proto in src/pagi_exec_client/proto/.

    /usr/bin/python3 clients/python/generate_stubs.py          # rewrite the stubs
    /usr/bin/python3 clients/python/generate_stubs.py --check  # exit 1 when they differ from the proto

The stubs are checked in so that installing the package needs no protoc. They come from Debian 12's
protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc); another protoc writes
other bytes, so --check skips (exit 77) under any other version rather than report a difference.
"""
import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import List

SKIP = 77
PROTOC_VERSION = "libprotoc 3.21.12"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto", "tools.proto")
STUBS_DIR = os.path.join(HERE, "src", "pagi_exec_client", "proto")
STUBS = ("tools_pb2.py", "tools_pb2.pyi", "tools_pb2_grpc.py")
# grpc_python_plugin imports the messages as a top-level module; inside the package it is a sibling.
TOP_LEVEL_IMPORT = "import tools_pb2 as tools__pb2\n"
PACKAGE_IMPORT = "from . import tools_pb2 as tools__pb2\n"


def tools_or_skip() -> str:
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    if not os.access(protoc, os.X_OK):
        print("SKIP: protoc is not installed (protobuf-compiler)")
        sys.exit(SKIP)
    if not os.access(GRPC_PYTHON_PLUGIN, os.X_OK):
        print(f"SKIP: {GRPC_PYTHON_PLUGIN} is not installed (protobuf-compiler-grpc)")
        sys.exit(SKIP)
    return protoc


def generate(protoc: str, out_dir: str) -> None:
    proto_dir = os.path.dirname(os.path.abspath(PROTO))
    subprocess.run(
        [protoc, f"--proto_path={proto_dir}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
         f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}",
         os.path.join(proto_dir, "tools.proto")],
        check=True)
    grpc_stub = os.path.join(out_dir, "tools_pb2_grpc.py")
    with open(grpc_stub) as f:
        text = f.read()
    if TOP_LEVEL_IMPORT not in text:
        sys.exit(f"{grpc_stub}: the plugin no longer writes {TOP_LEVEL_IMPORT.strip()!r}; update {__file__}")
    with open(grpc_stub, "w") as f:
        f.write(text.replace(TOP_LEVEL_IMPORT, PACKAGE_IMPORT))


def differences(fresh_dir: str) -> List[str]:
    lines: List[str] = []
    for name in STUBS:
        checked_in = os.path.join(STUBS_DIR, name)
        old = open(checked_in).read().splitlines(keepends=True) if os.path.exists(checked_in) else []
        new = open(os.path.join(fresh_dir, name)).read().splitlines(keepends=True)
        lines += difflib.unified_diff(old, new, fromfile=f"checked in: {name}", tofile=f"from tools.proto: {name}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    check = parser.parse_args().check
    protoc = tools_or_skip()
    version = subprocess.run([protoc, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if version != PROTOC_VERSION:
        message = f"{protoc} is {version!r}; the checked-in stubs come from {PROTOC_VERSION!r}"
        if check:
            print(f"SKIP: {message}")
            return SKIP
        print(f"warning: {message}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="pagi-stubs-") as fresh:
        generate(protoc, fresh)
        diff = differences(fresh)
        if check:
            if diff:
                sys.stdout.writelines(diff)
                print(f"FAIL: the stubs in {STUBS_DIR} are stale: run {os.path.abspath(__file__)}")
                return 1
            print(f"ok: the checked-in stubs match {os.path.normpath(PROTO)}")
            return 0
        for name in STUBS:
            shutil.copyfile(os.path.join(fresh, name), os.path.join(STUBS_DIR, name))
    print(f"wrote {', '.join(STUBS)} to {STUBS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
