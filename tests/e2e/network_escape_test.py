#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Nothing gets out of a run without the proxy: escape attempts through a real tools-server.

The test listens on the host: TCP and a UDP echo on the host's own non-loopback address, on
127.0.0.1 and on ::1, an abstract unix socket and a filesystem one. Then a run of each twin tries
to reach every one of them, open a raw socket and a packet socket, and reach the server's own gRPC
port, in native and in bwrap isolation:

- network = "none" and network = "egress" (whose only way out is the proxy on its own loopback)
  reach none of them;
- network = "host" (allowed here with TOOLS_ALLOW_HOST_NETWORK) reaches the TCP ones: the
  positive control, proving that each probe can tell "reached" from "failed".

A UDP probe counts as reached only when the listener's own answer ("pong") came back, so a packet
that stays in a namespace's own loopback (even one delivered to the probe itself) is not mistaken
for an escape. Needs root (exit 77 otherwise).
"""
import os
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
import harness  # noqa: E402
from harness import check  # noqa: E402

POLICY = """
[twins.twin-none]
allow = ["python3"]

[twins.twin-egress]
allow = ["python3"]
network = "egress"
allow_domains = ["allowed.test"]

[twins.twin-host]
allow = ["python3"]
network = "host"
"""

# Each attempt prints "<name> reached" or "<name> failed <why>".
PROBE = r"""
import errno, socket, sys
targets = dict(arg.split("=", 1) for arg in sys.argv[1:])
def attempt(name, how):
    try:
        how()
        print(name, "reached", flush=True)
    except Exception as e:
        why = errno.errorcode.get(getattr(e, "errno", None) or 0, type(e).__name__)
        print(name, "failed", why, flush=True)
def tcp(family, host, port):
    def go():
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((host, int(port)))  # a connection made is an escape, whatever answers
    return go
def udp(host, port):
    def go():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(b"ping", (host, int(port)))
            # The listener answers "pong": a "ping" back is the probe's own packet (the kernel
            # can pick the listener's port number as the probe's own in a fresh namespace).
            if s.recvfrom(16)[0] != b"pong":
                raise OSError(0, "no answer from the listener")
    return go
def unix(path):
    def go():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
    return go
def raw(family, kind, proto):
    return lambda: socket.socket(family, kind, proto).close()
if "own" in targets:
    attempt("tcp-own-address", tcp(socket.AF_INET, targets["own"], targets["tcp"]))
    attempt("udp-own-address", udp(targets["own"], targets["udp"]))
attempt("tcp-loopback", tcp(socket.AF_INET, "127.0.0.1", targets["tcp"]))
attempt("udp-loopback", udp("127.0.0.1", targets["udp"]))
attempt("tcp-ipv6-loopback", tcp(socket.AF_INET6, "::1", targets["tcp6"]))
attempt("tcp-documentation-net", tcp(socket.AF_INET, "192.0.2.1", "80"))
attempt("tcp-ipv6-documentation-net", tcp(socket.AF_INET6, "2001:db8::1", "80"))
attempt("server-grpc-port", tcp(socket.AF_INET, "127.0.0.1", targets["grpc"]))
attempt("unix-abstract", unix("\0" + targets["abstract"]))
attempt("unix-filesystem", unix(targets["path"]))
attempt("raw-icmp", raw(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet", raw(socket.AF_PACKET, socket.SOCK_RAW, 0))
"""

# What the host-network control must reach (the rest need privileges it does not have either, or
# exist only on the host's filesystem and abstract namespace, which a sandbox never shares).
CONTROL_REACHES = {"tcp-own-address", "udp-own-address", "tcp-loopback", "udp-loopback", "tcp-ipv6-loopback",
                   "server-grpc-port", "unix-abstract"}


def own_address():
    """A non-loopback IPv4 address of this host, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a source address
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


class Listeners:
    """TCP on every address (IPv4 and IPv6), a UDP echo, an abstract and a filesystem unix socket."""

    def __init__(self, work):
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(64)
        self.tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.tcp6.bind(("::1", 0))
        self.tcp6.listen(64)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.abstract_name = f"pagi-escape-{os.getpid()}"
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(8)
        # A world-writable place on the host's filesystem that a sandbox's own /tmp hides.
        self.path = os.path.join(work, "host.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.path)
        os.chmod(self.path, 0o777)
        os.chmod(work, 0o755)
        self.unix.listen(8)
        threading.Thread(target=self._echo_udp, daemon=True).start()
        for sock in (self.tcp, self.tcp6, self.abstract, self.unix):
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _echo_udp(self):
        while True:
            data, peer = self.udp.recvfrom(16)
            if data == b"ping":
                self.udp.sendto(b"pong", peer)

    def _accept(self, sock):
        while True:
            sock.accept()[0].close()

    def targets(self, grpc_port):
        out = {"tcp": self.tcp.getsockname()[1], "udp": self.udp.getsockname()[1], "tcp6": self.tcp6.getsockname()[1],
               "grpc": grpc_port, "abstract": self.abstract_name, "path": self.path}
        if own_address() is not None:
            out["own"] = own_address()
        return [f"{k}={v}" for k, v in out.items()]


def attempts(stub, tools_pb2, twin, targets):
    request = tools_pb2.ExecutionRequest(command="python3", args=["-c", PROBE, *targets], twin_id=twin)
    response = stub.RequestExecution(request, timeout=120)
    seen = {}
    for line in response.stdout_logs:
        name, verdict = line.split(" ", 1)
        seen[name] = verdict
    check(response.success and seen, f"{twin} ({response.isolation}): the probe ran ({response.message} {list(response.stderr_logs)[-3:]})")
    return seen


def main():
    binary, proto_path, _ = harness.setup("escape tests need root: native and bwrap isolation, network namespaces")
    import grpc
    with tempfile.TemporaryDirectory(prefix="pagi-escape-") as work:
        harness.generate_stubs(proto_path, os.path.join(work, "stubs"))
        import tools_pb2
        import tools_pb2_grpc
        policy = os.path.join(work, "policy.toml")
        with open(policy, "w") as f:
            f.write(POLICY)
        listeners = Listeners(work)
        if own_address() is None:
            print("note: this host has no non-loopback IPv4 address; the own-address probes are left out")
        for isolation in ("native", "bwrap"):
            server = harness.Server(binary, work, {
                "SANDBOX_DIR": os.path.join(work, f"sandbox-{isolation}"), "TOOLS_ISOLATION": isolation,
                "TOOLS_REQUIRE_ISOLATION": "true", "TOOLS_POLICY_FILE": policy, "TOOLS_ALLOW_HOST_NETWORK": "true"},
                name=isolation)
            try:
                channel = grpc.insecure_channel(server.address)
                grpc.channel_ready_future(channel).result(timeout=30)
                stub = tools_pb2_grpc.ToolExecutorServiceStub(channel)
                targets = listeners.targets(int(server.address.rsplit(":", 1)[1]))
                control = attempts(stub, tools_pb2, "twin-host", targets)
                for name in CONTROL_REACHES & control.keys():
                    check(control[name] == "reached", f"{isolation}: the host-network control reaches {name}: {control[name]}")
                for twin in ("twin-none", "twin-egress"):
                    seen = attempts(stub, tools_pb2, twin, targets)
                    check(seen.keys() == control.keys(), f"{isolation} {twin}: every probe ran")
                    for name, verdict in sorted(seen.items()):
                        check(verdict.startswith("failed"), f"{isolation} {twin}: {name} fails ({verdict})")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
