#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Controlled egress through a real tools-server (native isolation; needs root, exit 77 otherwise).

Upstream servers run on this machine, in a network namespace the test creates and joins to the
host by a veth pair on a documentation network (198.51.100.0/24): an HTTP server on port 80, an
HTTPS server on 443 (a certificate made here), a raw TCP echo on 7000, and a UDP listener. The
server's proxy learns the test names from TOOLS_EGRESS_HOSTS, never from DNS. Sandboxed commands
(curl and Python, unchanged, through HTTP_PROXY/HTTPS_PROXY) then check:

- allowed names work: plain HTTP (forwarded), HTTPS (CONNECT), Python's urllib, a wildcard hit,
  an explicit port;
- refused: a name not listed, a wildcard miss, a denied name under an allowed wildcard, an
  allowed name resolving to 127.0.0.1 or to the host's own address, an IP literal, a port not
  listed: each a 403 whose body names the rule;
- nothing gets past the proxy: a direct TCP connection to the upstream, a UDP packet, DNS to the
  upstream's address;
- every attempt is an "egress" audit record (host, port, address, verdict, rule, bytes), and the
  response's egress summary counts them.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
import harness  # noqa: E402
from harness import check  # noqa: E402

TWIN = "twin-egress"
HOST_SIDE, UPSTREAM = "198.51.100.1", "198.51.100.2"
PAGE = "hello from the upstream\n"

POLICY = """
[twins.twin-egress]
allow = ["curl", "python3"]
network = "egress"
allow_domains = ["allowed.test", "*.wild.test", "rebind.test", "self.test", "allowed.test:7000"]
deny_domains = ["blocked.wild.test"]

[twins.twin-closed]
allow = ["curl", "python3"]
"""

UPSTREAM_SCRIPT = r"""
import http.server, socket, socketserver, ssl, sys, threading
page = sys.argv[1].encode()
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = page if self.path != "/big" else b"x" * (1 << 20)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Path", self.path)
        self.send_header("X-Seen-Proxy-Auth", self.headers.get("Proxy-Authorization", "none"))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
plain = Server((sys.argv[2], 80), Page)
tls = Server((sys.argv[2], 443), Page)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[3], sys.argv[4])
tls.socket = context.wrap_socket(tls.socket, server_side=True)
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)
class EchoServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
echo = EchoServer((sys.argv[2], 7000), Echo)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((sys.argv[2], 9999))
def udp_log():
    while True:
        data, _ = udp.recvfrom(2048)
        print("UDP " + data.decode(errors="replace"), flush=True)
for server in (plain, tls, echo):
    threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Thread(target=udp_log, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def sh(*argv, check_rc=True):
    return subprocess.run(list(argv), check=check_rc, capture_output=True, text=True)


class Upstream:
    """A network namespace joined to the host by a veth pair, with the servers of UPSTREAM_SCRIPT."""

    def __init__(self, work):
        self.ns = f"pagi-egress-{os.getpid()}"
        self.host_if = f"pe{os.getpid() % 100000}h"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "up0", "netns", self.ns)
        sh("ip", "addr", "add", f"{HOST_SIDE}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{UPSTREAM}/24", "dev", "up0")
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", "up0", "up")
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        key, cert = os.path.join(work, "up.key"), os.path.join(work, "up.crt")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
           "-subj", "/CN=allowed.test", "-addext", "subjectAltName=DNS:allowed.test,DNS:a.wild.test")
        script = os.path.join(work, "upstream.py")
        with open(script, "w") as f:
            f.write(UPSTREAM_SCRIPT)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "/usr/bin/python3", script, PAGE, UPSTREAM,
                                      cert, key], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        check(self.proc.stdout.readline().strip() == "ready", "the upstream servers listen in their namespace")
        self.udp_lines = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            self.udp_lines.append(line.strip())

    def close(self):
        self.proc.kill()
        self.proc.wait()
        sh("ip", "link", "del", self.host_if, check_rc=False)
        sh("ip", "netns", "del", self.ns, check_rc=False)


def tools():
    import tools_pb2
    import tools_pb2_grpc
    return tools_pb2, tools_pb2_grpc


def run(stub, command, args, twin=TWIN):
    tools_pb2, _ = tools()
    return stub.RequestExecution(tools_pb2.ExecutionRequest(command=command, args=args, twin_id=twin), timeout=60)


def curl(stub, *args, twin=TWIN):
    """(http status code as curl reports it, body, response)."""
    response = run(stub, "curl", ["-s", "-k", "--max-time", "20", "-w", "\n%{http_code}", *args], twin=twin)
    lines = list(response.stdout_logs)
    # -w puts the code on a line of its own, after the body's own last newline.
    return (lines[-1] if lines else ""), "\n".join(lines[:-1]).rstrip("\n"), response


def egress_records(audit_path):
    with open(audit_path) as f:
        return [r for r in (json.loads(line) for line in f if line.strip()) if r.get("type") == "egress"]


def main():
    binary, proto_path, cli = harness.setup("egress needs root: network namespaces, a veth pair, native isolation")
    for tool in ("ip", "openssl", "curl"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            harness.skip(f"{tool} is not installed (scripts/install-deps.sh installs it)")
    import grpc
    with tempfile.TemporaryDirectory(prefix="pagi-egress-") as work:
        harness.generate_stubs(proto_path, os.path.join(work, "stubs"))
        policy = os.path.join(work, "policy.toml")
        with open(policy, "w") as f:
            f.write(POLICY)
        audit = os.path.join(work, "audit.jsonl")
        upstream = Upstream(work)
        server = None
        try:
            hosts = ",".join([f"allowed.test={UPSTREAM}", f"a.wild.test={UPSTREAM}", f"blocked.wild.test={UPSTREAM}",
                              "rebind.test=127.0.0.1", f"self.test={HOST_SIDE}"])
            server = harness.Server(binary, work, {
                "SANDBOX_DIR": os.path.join(work, "sandbox"), "TOOLS_ISOLATION": "native",
                "TOOLS_REQUIRE_ISOLATION": "true", "TOOLS_POLICY_FILE": policy, "TOOLS_AUDIT_LOG": audit,
                "TOOLS_AUDIT_SYNC": "every", "TOOLS_EGRESS_HOSTS": hosts, "TOOLS_METRICS_ADDR": "127.0.0.1:0"})
            metrics_line = server.proc.stdout.readline().decode().strip()
            check(metrics_line.startswith("metrics on http://"), f"the metrics listener is up: {metrics_line!r}")
            metrics_url = metrics_line[len("metrics on "):]
            channel = grpc.insecure_channel(server.address)
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = tools()[1].ToolExecutorServiceStub(channel)
            tools_pb2 = tools()[0]

            # CheckPolicy says what a run of the twin would reach.
            decision = stub.CheckPolicy(tools_pb2.ExecutionRequest(command="curl", twin_id=TWIN), timeout=30)
            check(decision.network_mode == "egress" and "*.wild.test" in decision.allow_domains
                  and list(decision.deny_domains) == ["blocked.wild.test"],
                  f"CheckPolicy names the mode and the domains: {decision.network_mode} {list(decision.allow_domains)}")

            # Allowed: the proxy is the way out, and ordinary tools find it by themselves.
            code, body, response = curl(stub, "http://allowed.test/page")
            check(code == "200" and body == PAGE.strip(), f"plain HTTP to an allowed name works through the proxy: {code} {body!r}")
            check(response.egress.connections_allowed == 1 and response.egress.bytes_down > len(PAGE),
                  f"the response's egress summary counts it: {response.egress}")
            record = stub.GetExecution(tools_pb2.GetExecutionRequest(execution_id=response.execution_id), timeout=30)
            check(record.egress.connections_allowed == 1 and record.egress.bytes_down == response.egress.bytes_down,
                  f"the execution's history record carries the same summary: {record.egress}")
            code, body, _ = curl(stub, "-D", "-", "-H", "Proxy-Authorization: Basic c2VjcmV0", "http://allowed.test/p?q=1")
            check("X-Seen-Path: /p?q=1" in body and "X-Seen-Proxy-Auth: none" in body,
                  "a forwarded request reaches the upstream in origin form, without Proxy-* headers")
            code, body, _ = curl(stub, "https://allowed.test/page")
            check(code == "200" and body == PAGE.strip(), f"HTTPS to an allowed name works (CONNECT): {code} {body!r}")
            code, body, _ = curl(stub, "https://a.wild.test/page")
            check(code == "200", f"a name under an allowed wildcard works: {code}")
            response = run(stub, "python3", ["-c", "import urllib.request; print(urllib.request.urlopen("
                                             "'http://allowed.test/page', timeout=20).read().decode().strip())"])
            check(list(response.stdout_logs) == [PAGE.strip()], f"Python's urllib works unchanged: {list(response.stderr_logs)}")
            echo = ("import socket; s = socket.create_connection(('127.0.0.1', 3128), timeout=20); "
                    "s.sendall(b'CONNECT allowed.test:7000 HTTP/1.1\\r\\nHost: allowed.test:7000\\r\\n\\r\\n'); "
                    "head = s.recv(4096); s.sendall(b'ping'); print(head.split(b' ')[1].decode(), s.recv(16).decode())")
            response = run(stub, "python3", ["-c", echo])
            check(list(response.stdout_logs) == ["200 ping"], f"CONNECT to an allowed explicit port relays raw TCP: "
                                                              f"{list(response.stdout_logs)} {list(response.stderr_logs)}")
            code, body, _ = curl(stub, "https://allowed.test:8443/")
            check(code != "200", f"a port the pattern does not name is refused: {code}")

            # Refused, each with a body that names the rule.
            for url, rule, what in [
                ("http://other.test/", "egress.not_allowed", "a name not listed"),
                ("http://wild.test/", "egress.not_allowed", "the wildcard's own suffix"),
                ("http://blocked.wild.test/", "egress.deny_domains[blocked.wild.test]", "a denied name under an allowed wildcard"),
                ("http://rebind.test/", "egress.blocked_address", "an allowed name resolving to 127.0.0.1"),
                ("http://self.test/", "egress.blocked_address", "an allowed name resolving to the host's own address"),
                (f"http://{UPSTREAM}/", "egress.not_allowed", "an IP literal"),
            ]:
                code, body, _ = curl(stub, url)
                check(code == "403" and rule in body, f"refused: {what} (403 naming {rule}): {code} {body!r}")

            # Nothing gets out without the proxy.
            code, _, _ = curl(stub, "--noproxy", "*", f"http://{UPSTREAM}/page")
            check(code == "000", f"a direct TCP connection to the upstream fails: {code}")
            udp = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                   f"s.sendto(b'leak', ('{UPSTREAM}', 9999))")
            response = run(stub, "python3", ["-c", udp])
            check(response.exit_code != 0 and any("unreachable" in line for line in response.stderr_logs),
                  f"a UDP packet has no route: {list(response.stderr_logs)[-1:]}")
            dns = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                   f"s.sendto(b'\\x12\\x34' + bytes(10), ('{UPSTREAM}', 53))")
            response = run(stub, "python3", ["-c", dns])
            check(response.exit_code != 0, "DNS to an outside server has no route")
            check(not any(line.startswith("UDP") for line in upstream.udp_lines), "the upstream received no UDP")

            # A twin without egress gets nothing, proxy included.
            code, _, response = curl(stub, "http://allowed.test/page", twin="twin-closed")
            check(code == "000" and not response.HasField("egress"), f"a twin with network = none has no proxy: {code}")

            # Every attempt is on record.
            records = egress_records(audit)
            hosts_seen = {(r["host"], r["allowed"]) for r in records}
            for expected in [("allowed.test", True), ("a.wild.test", True), ("other.test", False),
                             ("blocked.wild.test", False), ("rebind.test", False), ("self.test", False),
                             (UPSTREAM, False)]:
                check(expected in hosts_seen, f"audit has an egress record for {expected}")
            first = next(r for r in records if r["host"] == "allowed.test" and r["allowed"])
            check(first["twin_id"] == TWIN and first["address"] == UPSTREAM and first["port"] in (80, 443, 7000)
                  and first["bytes_down"] > 0 and first["rule"].startswith("egress.allow_domains["),
                  f"an allowed record names the twin, address, port, rule and bytes: {first}")
            rebind = next(r for r in records if r["host"] == "rebind.test")
            check(rebind["address"] == "127.0.0.1" and rebind["rule"].startswith("egress.blocked_address"),
                  f"the rebinding refusal records the address it refused: {rebind}")
            # The metrics count every attempt, by result.
            import urllib.request
            with urllib.request.urlopen(metrics_url, timeout=10) as answer:
                text = answer.read().decode()
            counts = {}
            for line in text.splitlines():
                if line.startswith("pagi_exec_egress_connections_total{"):
                    counts[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
            allowed = sum(1 for r in records if r["allowed"])
            check(counts.get("allowed") == allowed and counts.get("refused") == len(records) - allowed,
                  f"pagi_exec_egress_connections_total counts the audit's {allowed} allowed and "
                  f"{len(records) - allowed} refused: {counts}")
            verified = subprocess.run([cli, "audit", "verify", audit], capture_output=True, text=True)
            check(verified.returncode == 0, f"the audit chain with egress records verifies: {verified.stdout}{verified.stderr}")
        finally:
            if server is not None:
                server.stop()
            upstream.close()


if __name__ == "__main__":
    main()
