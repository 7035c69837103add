# SPDX-License-Identifier: Apache-2.0
"""The installed pagi_exec_client against a real tools-server; started by install_and_run_test.py.

    <venv>/bin/python client_checks.py plain ADDRESS SANDBOX_DIR
    <venv>/bin/python client_checks.py token ADDRESS
    <venv>/bin/python client_checks.py mtls ADDRESS CERTS_DIR
"""
import os
import re
import sys
import time
import uuid
from typing import Callable, Dict, List

from google.protobuf import empty_pb2

from pagi_exec_client import (Chunk, Client, Decision, ExecutionRecord, ExecutionResult, PagiExecError, Started,
                              StreamResult)
from pagi_exec_client.proto import tools_pb2_grpc

UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


def expect_error(code: str, call: Callable[[], object], what: str) -> PagiExecError:
    try:
        call()
    except PagiExecError as error:
        check(error.code == code, f"{what}: {code} (got {error.code}: {error.message})")
        return error
    sys.exit(f"FAIL: {what}: no error")


def run_and_refusal(client: Client) -> None:
    echo = client.run("echo", ["hello", "python"], twin_id="twin-aegis")
    check(isinstance(echo, ExecutionResult), "run() returns an ExecutionResult")
    check(echo.success and echo.exit_code == 0, "an allowed echo succeeds with exit code 0")
    check(echo.stdout_lines == ["hello python"], "its stdout comes back as lines")
    check(echo.stderr_lines == [] and not echo.timed_out and echo.limit_hit == "", "nothing on stderr, no limit hit")
    check(UUID_V4.match(echo.execution_id) is not None, "execution_id is a uuid v4")
    check(echo.isolation != "" and echo.policy_rule == "twins.twin-aegis.allow[*]", "isolation and rule are named")

    failing = client.run("command_exec", ["echo out; echo err >&2; exit 3"], twin_id="twin-sentinel")
    check(not failing.success and failing.exit_code == 3, "a command exiting 3 answers exit_code 3")
    check(failing.stdout_lines == ["out"] and failing.stderr_lines == ["err"], "both streams come back")

    refused = client.run("rm", ["-rf", "/"], twin_id="twin-aegis")
    check(not refused.success and refused.exit_code == 1, "rm is refused in-band (an answer, not an error): exit 1")
    check(refused.message != "" and refused.stderr_lines == [f"Policy violation: {refused.message}"],
          "the refusal's message is its reason and stderr says 'Policy violation: <reason>'")
    check(refused.policy_rule == "always_refused[rm]", "the refusal names its rule")


def streaming(client: Client, sandbox_dir: str) -> None:
    # Each line waits for the client to have received the one before (a file the callback creates in
    # the twin's workspace), so the chunks are separate and their order is the order of writing.
    workspace = os.path.join(sandbox_dir, "twin-aegis")
    tag = uuid.uuid4().hex
    lines = 6
    script = (f'for i in $(seq 1 {lines}); do if [ $((i % 2)) = 1 ]; then echo out$i; else echo err$i >&2; fi; '
              f'while [ ! -e "$PAGI_WORKSPACE/{tag}.$i" ]; do sleep 0.01; done; done')
    chunks: List[Chunk] = []
    started: List[Started] = []

    def on_chunk(chunk: Chunk) -> None:
        chunks.append(chunk)
        open(os.path.join(workspace, f"{tag}.{len(chunks)}"), "w").close()

    result = client.stream("command_exec", [script], "twin-aegis", on_chunk=on_chunk, on_started=started.append)
    check(isinstance(result, StreamResult) and result.allowed and result.exit_code == 0,
          f"stream() of an allowed command returns its finished event, exit 0 ({result.reason})")
    expected = [Chunk("stdout" if i % 2 else "stderr", f"{'out' if i % 2 else 'err'}{i}\n".encode())
                for i in range(1, lines + 1)]
    check(chunks == expected, f"on_chunk got {lines} chunks, each as written, in order, on its stream ({chunks})")
    check(len(started) == 1 and isinstance(started[0], Started) and started[0] == result.started,
          "on_started got the started event, also in the result")
    check(started[0].execution_id == result.execution_id and started[0].limits.timeout_ms > 0,
          "the started event carries the execution id and the limits")
    for i in range(1, lines + 1):
        os.remove(os.path.join(workspace, f"{tag}.{i}"))

    refused = client.stream("rm", ["x"], "twin-aegis", on_chunk=on_chunk)
    check(not refused.allowed and refused.exit_code == 1 and refused.started is None,
          "a refused stream() is one finished event: allowed False, exit 1, no started event")
    check(refused.reason == "command 'rm' is always refused", "its reason is the refusal's")

    class Stop(Exception):
        pass

    def stop(chunk: Chunk) -> None:
        raise Stop()

    cancelled: List[Started] = []
    try:
        client.stream("command_exec", ["echo first; exec sleep 30"], "twin-aegis", on_chunk=stop,
                      on_started=cancelled.append)
        check(False, "an exception in on_chunk propagates")
    except Stop:
        check(True, "an exception in on_chunk propagates")
    record = wait_for_record(client, cancelled[0].execution_id)
    check(record.message.startswith("execution_cancelled") and not record.timed_out and record.signal == 9,
          f"and cancels the call: the server killed the command ({record.message})")


def wait_for_record(client: Client, execution_id: str) -> ExecutionRecord:
    """The record, once the server has finished the execution (it enters the history then)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return client.get(execution_id)
        except PagiExecError as error:
            if error.code != "NOT_FOUND" or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def policy(client: Client) -> None:
    allowed = client.check("vector_query", [], "twin-trace")
    check(isinstance(allowed, Decision) and allowed.allowed, "check(): twin-trace may run vector_query")
    check(allowed.rule == "twins.twin-trace.allow[vector_query]" and allowed.limits is not None
          and allowed.limits.timeout_ms > 0, "the decision names the rule and the limits a run would get")
    check(allowed.policy_revision == "builtin", "the decision names the policy revision")
    refused = client.check("ls", ["-l"], "twin-trace")
    check(not refused.allowed and refused.rule == "default_deny" and refused.limits is None,
          "check(): twin-trace may not run ls (default deny, no limits)")
    noted = client.check("python3", ["-c", "print(1)"], "twin-aegis")
    check(noted.allowed and any(n.startswith("unjudgeable") for n in noted.notes),
          "check() carries the notes on what the policy could not judge")


def history(client: Client) -> None:
    job = f"history-{uuid.uuid4().hex}"
    ids = [client.run("echo", [str(i)], "twin-aegis", job_id=job).execution_id for i in range(3)]
    ids += [client.run("rm", [str(i)], "twin-aegis", job_id=job).execution_id for i in range(4)]
    first = client.history_page(job_id=job, page_size=3)
    check(len(first.records) == 3 and first.next_page_token != "", "a page of 3 of 7 records has a next_page_token")
    records = list(client.history(job_id=job, page_size=3))
    check([r.execution_id for r in records] == ids[::-1], "history() walks every page, newest first (7 over 3 pages)")
    check(all(isinstance(r, ExecutionRecord) and r.job_id == job for r in records), "every record is of the job")
    refused = list(client.history(job_id=job, outcome="refused", page_size=2))
    check([r.execution_id for r in refused] == ids[:2:-1] and not any(r.allowed for r in refused),
          "outcome='refused' keeps the 4 refusals")
    expect_error("INVALID_ARGUMENT", lambda: list(client.history(outcome="sideways")),
                 "an unknown outcome is the server's INVALID_ARGUMENT")

    one = client.get(ids[0])
    check(one.execution_id == ids[0] and one.command == "echo" and one.args == ["0"] and one.ran
          and one.exit_code == 0, "get() of a known id returns its record")
    check(one.stdout_lines == ["0"] and one.started_at.endswith("Z") and one.twin_id == "twin-aegis",
          "the record holds its output, its times and the twin")
    error = expect_error("NOT_FOUND", lambda: client.get("00000000-0000-4000-8000-000000000000"),
                         "get() of an unknown id")
    check("00000000-0000-4000-8000-000000000000" in error.message, "the error carries the server's message")


def health(client: Client) -> None:
    status = client.health()
    check(status.status == "healthy" and status.version != "", "health(): healthy, with a version")
    check(status.message.startswith("Tool executor service is operational"), "health()'s message is the server's")
    raw = tools_pb2_grpc.ToolExecutorServiceStub(client.channel).HealthCheck(empty_pb2.Empty(), timeout=30)
    check(raw.version == status.version, "the generated stubs (pagi_exec_client.proto) work on client.channel")


def plain(address: str, sandbox_dir: str) -> None:
    with Client(address, timeout=60) as client:
        run_and_refusal(client)
        streaming(client, sandbox_dir)
        policy(client)
        history(client)
        health(client)
    expect_error("UNAVAILABLE", lambda: Client("127.0.0.1:1", timeout=10).health(),
                 "a server that is not there")


def token(address: str) -> None:
    with Client(address) as anonymous:
        expect_error("UNAUTHENTICATED", lambda: anonymous.run("echo", ["x"], "twin-aegis"), "no token")
        check(anonymous.health().status == "healthy", "health() needs no token")
    with Client(address, token="not-a-token") as stranger:
        expect_error("UNAUTHENTICATED", lambda: stranger.check("echo", [], "twin-aegis"), "an unknown token")
    with Client(address, token="trace-secret") as trace:
        expect_error("PERMISSION_DENIED", lambda: trace.run("echo", ["x"], "twin-aegis"),
                     "a token of twin-trace asking as twin-aegis")
        check(trace.check("vector_query").allowed, "an empty twin_id takes the twin the token proves")
    with Client(address, token="aegis-secret") as aegis:
        ran = aegis.run("echo", ["proven"])
        check(ran.success and ran.stdout_lines == ["proven"], "twin-aegis's token runs as twin-aegis")
        check(aegis.get(ran.execution_id).twin_id == "twin-aegis", "and its record says so")
    with Client(address, token="trace-secret") as trace:
        own = trace.run("vector_query").execution_id
        seen = [r.execution_id for r in trace.history()]
        check(own in seen and ran.execution_id not in seen, "history() shows a twin its own records only")
        expect_error("NOT_FOUND", lambda: trace.get(ran.execution_id), "another twin's record is not found")


def mtls(address: str, certs: str) -> None:
    def pem(name: str) -> bytes:
        with open(os.path.join(certs, name), "rb") as f:
            return f.read()

    def path(name: str) -> str:
        return os.path.join(certs, name)

    with Client(address, root_certificates=path("ca.crt"), certificate_chain=path("trace.crt"),
                private_key=path("trace.key")) as trace:
        decision = trace.check("vector_query")
        check(decision.allowed and decision.rule == "twins.twin-trace.allow[vector_query]",
              "mTLS (PEM files): the client certificate proves twin-trace")
        expect_error("PERMISSION_DENIED", lambda: trace.run("echo", ["x"], "twin-aegis"),
                     "twin-trace's certificate asking as twin-aegis")
    with Client(address, root_certificates=pem("ca.crt"), certificate_chain=pem("aegis-cn.crt"),
                private_key=pem("aegis-cn.key")) as aegis:
        ran = aegis.run("echo", ["mtls"], "twin-aegis")
        check(ran.success and ran.stdout_lines == ["mtls"], "mTLS (PEM bytes): twin-aegis's certificate runs")
    with Client(address, root_certificates=pem("ca.crt"), timeout=10) as anonymous:
        expect_error("UNAVAILABLE", anonymous.health, "TLS without the client certificate the server requires")


if __name__ == "__main__":
    modes: Dict[str, Callable[..., None]] = {"plain": plain, "token": token, "mtls": mtls}
    modes[sys.argv[1]](*sys.argv[2:])
