#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Runs one command on a tools-server, printing its output as it comes, then what the server recorded.

    /usr/bin/python3 clients/python/examples/run_command.py                   # echo hello; uname -s
    /usr/bin/python3 clients/python/examples/run_command.py --twin twin-aegis -- ls -l /
    /usr/bin/python3 clients/python/examples/run_command.py -- rm -rf /       # refused: exit 1

Against ./scripts/serve.sh's default address (127.0.0.1:50054) and the seed policy's twins
(examples/policy.toml). Exits with the command's exit code (1 when the policy refuses it).
"""
import argparse
import os
import sys

try:
    import pagi_exec_client
except ImportError:  # not installed: use the package next to this example, in the repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    try:
        import pagi_exec_client
    except ImportError as error:  # this interpreter has no grpcio or protobuf
        sys.exit(f"{error}: run this with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf) "
                 f"or a venv where clients/python is installed, not {sys.executable}")

from pagi_exec_client import Chunk, Client, PagiExecError


def main() -> int:
    parser = argparse.ArgumentParser(description="Run one command on a pagi-exec tools-server.")
    parser.add_argument("--target", default=pagi_exec_client.DEFAULT_TARGET, help="host:port or unix:/path")
    parser.add_argument("--twin", default="twin-sentinel", help="the twin asking (default: twin-sentinel)")
    parser.add_argument("--token", default=os.environ.get("PAGI_EXEC_TOKEN"),
                        help="bearer token, with TOOLS_AUTH=token (default: $PAGI_EXEC_TOKEN)")
    parser.add_argument("command", nargs="?", default="command_exec")
    parser.add_argument("args", nargs="*", default=["echo hello; uname -s"])
    options = parser.parse_args()

    def show(chunk: Chunk) -> None:
        out = sys.stdout if chunk.stream == "stdout" else sys.stderr
        out.flush()  # what print() holds goes first
        out.buffer.write(chunk.data)
        out.buffer.flush()

    try:
        with Client(options.target, token=options.token) as client:
            decision = client.check(options.command, options.args, options.twin)
            print(f"policy: {'allowed' if decision.allowed else 'refused'} by {decision.rule}: {decision.reason}")
            result = client.stream(options.command, options.args, options.twin, on_chunk=show)
            print(f"exit code {result.exit_code} in {result.duration_ms} ms ({result.isolation or 'not run'}): "
                  f"{result.reason}")
            record = client.get(result.execution_id)
            print(f"history: {record.execution_id} {record.command} allowed={record.allowed} ran={record.ran} "
                  f"started {record.started_at}")
    except PagiExecError as error:  # the call failed: unreachable, unauthenticated, over a limit...
        print(f"{options.target}: {error.code}: {error.message}", file=sys.stderr)
        return 2
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
