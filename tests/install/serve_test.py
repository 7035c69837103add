#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/serve.sh as the README runs it: the first line on stdout is the server's `listening on`
(install-deps, meson and ninja write to stderr), and it builds nothing beyond the server.

    serve_test.py SOURCE_DIR BUILD_DIR   (skipped unless BUILD_DIR is SOURCE_DIR/build, serve.sh's)
"""
import os
import select
import signal
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    source_dir, build_dir = (os.path.realpath(p) for p in sys.argv[1:3])
    if build_dir != os.path.join(source_dir, "build"):
        print(f"SKIP: serve.sh builds in {source_dir}/build, this build is {build_dir}")
        return SKIP
    sandbox = tempfile.mkdtemp(prefix="pagi-serve-")
    os.chmod(sandbox, 0o711)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "SANDBOX_DIR": os.path.join(sandbox, "sandbox")}
    proc = subprocess.Popen(["bash", os.path.join(source_dir, "scripts/serve.sh"), "--listen", "127.0.0.1:0"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 240)
        line = proc.stdout.readline().decode() if ready else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        shutil.rmtree(sandbox, ignore_errors=True)
    print(err.decode()[-1500:])
    if not line.startswith("listening on 127.0.0.1:"):
        print(f"FAIL: the first stdout line of serve.sh is {line!r}, not the server's listening line")
        return 1
    print(f"ok: serve.sh's first stdout line is {line.strip()!r}; exit {proc.returncode} after SIGTERM")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
