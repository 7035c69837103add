#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""E2E: pip-installs clients/python offline into a fresh venv, then drives real tools-servers with it.

Installs exactly as the package's README says (a venv with --system-site-packages, so Debian's
python3-grpcio and python3-protobuf serve the dependencies; pip --no-build-isolation --no-index), from
a copy of the package so the source tree stays untouched. Then runs client_checks.py with the venv's
Python against a server without authentication, one with TOOLS_AUTH=token and one with mTLS, and runs
examples/run_command.py as written (installed, and from the repository) and the README's example. Needs
TOOLS_SERVER_BIN and TOOLS_E2E_DIR (tests/e2e/meson.build); exits 77 (skipped) when the Debian packages
it needs are missing.
"""
import ast
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

SKIP = 77
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = os.path.join(PACKAGE_DIR, "tests", "client_checks.py")


def skip(reason: str) -> None:
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


def run(argv: List[str], what: str, **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    """Runs argv; its output is shown; a non-zero exit fails the test, naming what it was."""
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    sys.stdout.write(done.stdout)
    check(done.returncode == 0, f"{what} (exit {done.returncode})")
    return done


def prerequisites() -> None:
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as e:
        skip(f"grpc for Python is unavailable ({e}); install python3-grpcio and python3-protobuf")
    try:
        import ensurepip  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as e:
        skip(f"venv or wheel is unavailable ({e}); install python3-venv and python3-wheel")


def install(work_dir: str) -> str:
    """A venv with the package installed from a copy of clients/python; returns its python."""
    source = os.path.join(work_dir, "clients-python")
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = os.path.join(work_dir, "venv")
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], "python3 -m venv --system-site-packages")
    python = os.path.join(venv, "bin", "python")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", source],
        "pip install --no-build-isolation --no-index ./clients/python", env=env)
    where = run([python, "-c", "import pagi_exec_client; print(pagi_exec_client.__file__)"], "import the package")
    check(where.stdout.strip().startswith(venv + "/"), "the package is imported from the venv, not the source tree")
    return python


def start_server(binary: str, work_dir: str, name: str, env: Dict[str, str]) -> Tuple["subprocess.Popen[bytes]", str]:
    """A tools-server on a free loopback port; returns (process, address from its first stdout line)."""
    stderr_path = os.path.join(work_dir, f"{name}.stderr")
    full_env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work_dir, f"{name}-sandbox"), **env}
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], env=full_env, stdout=subprocess.PIPE,
                                stderr=stderr, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready and proc.stdout else ""
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        with open(stderr_path) as err:
            sys.exit(f"{name} server did not start: stdout {line!r}, stderr {err.read()!r}")
    return proc, line[len("listening on "):].strip()


def stop_server(proc: "subprocess.Popen[bytes]", name: str) -> None:
    proc.terminate()
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    check(code == 0, f"the {name} server stops on SIGTERM with exit code 0 (got {code})")


def with_server(binary: str, work_dir: str, name: str, env: Dict[str, str], body: Callable[[str], object]) -> None:
    proc, address = start_server(binary, work_dir, name, env)
    try:
        body(address)
    finally:
        stop_server(proc, name)


def example(python: str, address: str, work_dir: str) -> None:
    script = os.path.join(PACKAGE_DIR, "examples", "run_command.py")
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    for interpreter, how in ((python, "installed"), ("/usr/bin/python3", "from the repository")):
        done = run([interpreter, script, "--target", address], f"the example runs as written ({how})",
                   env=env, cwd=work_dir)
        lines = done.stdout.splitlines()
        check(lines[1:3] == ["hello", "Linux"], f"the example streams the command's output ({how})")
        check(lines[3].startswith("exit code 0 ") and lines[4].startswith("history: "),
              f"the example prints the result and the record ({how})")
    refused = subprocess.run([python, script, "--target", address, "--", "rm", "-rf", "/"], env=env, cwd=work_dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(refused.stdout)
    check(refused.returncode == 1 and "refused by always_refused[rm]" in refused.stdout,
          "the example of a refused command exits 1 and says why")


def readme_example(python: str, address: str, work_dir: str) -> None:
    """The Python example of clients/python/README.md, as written but for the server's address."""
    with open(os.path.join(PACKAGE_DIR, "README.md")) as f:
        readme = f.read()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    check('Client("127.0.0.1:50054")' in code, "the README's example connects to serve.sh's address")
    path = os.path.join(work_dir, "readme_example.py")
    with open(path, "w") as f:
        f.write(code.replace("127.0.0.1:50054", address))
    done = run([python, path], "the README's example runs", env={"PATH": "/usr/bin:/bin"}, cwd=work_dir)
    lines = done.stdout.splitlines()
    chunks = [ast.literal_eval(line[len("stdout "):]) for line in lines if line.startswith("stdout b")]
    check(lines[0] == "0 ['hello', 'Linux']" and b"".join(chunks) == b"1\n2\n3\n" and lines[-2].startswith("0 ")
          and lines[-1] == "1 command 'rm' is always refused", "the README's example prints what its comments say")


def main() -> int:
    binary = os.environ.get("TOOLS_SERVER_BIN")
    e2e_dir = os.environ.get("TOOLS_E2E_DIR")
    if not binary or not e2e_dir:
        sys.exit("TOOLS_SERVER_BIN and TOOLS_E2E_DIR must be set (run via meson test)")
    prerequisites()
    with tempfile.TemporaryDirectory(prefix="pagi-e2e-pyclient-") as work_dir:
        os.chmod(work_dir, 0o711)  # commands run as an unprivileged uid: the sandbox dirs must be reachable
        python = install(work_dir)
        checks_env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}

        def plain(address: str) -> None:
            run([python, CHECKS, "plain", address, os.path.join(work_dir, "plain-sandbox")],
                "the client against a server without authentication", env=checks_env)
            example(python, address, work_dir)
            readme_example(python, address, work_dir)

        with_server(binary, work_dir, "plain", {}, plain)

        tokens = os.path.join(work_dir, "tokens")
        with open(tokens, "w") as f:
            for token, twin in (("trace-secret", "twin-trace"), ("aegis-secret", "twin-aegis")):
                f.write(f"{hashlib.sha256(token.encode()).hexdigest()} {twin}\n")
        with_server(binary, work_dir, "token", {"TOOLS_AUTH": "token", "TOOLS_AUTH_TOKENS_FILE": tokens},
                    lambda address: run([python, CHECKS, "token", address], "the client with bearer tokens",
                                        env=checks_env))

        certs = os.path.join(work_dir, "pki")
        run(["bash", os.path.join(e2e_dir, "make_certs.sh"), certs], "make a test PKI (make_certs.sh)")
        mtls_env = {"TOOLS_AUTH": "mtls", "TOOLS_TLS_CERT": os.path.join(certs, "server.crt"),
                    "TOOLS_TLS_KEY": os.path.join(certs, "server.key"),
                    "TOOLS_TLS_CLIENT_CA": os.path.join(certs, "ca.crt")}
        with_server(binary, work_dir, "mtls", mtls_env,
                    lambda address: run([python, CHECKS, "mtls", address, certs], "the client with mutual TLS",
                                        env=checks_env))
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    result = main()
    print(f"python package checks passed in {time.monotonic() - start:.1f}s")
    sys.exit(result)
