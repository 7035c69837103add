// SPDX-License-Identifier: Apache-2.0
// E2E, native isolation through the real server: a run streaming over StreamExecution holds a
// listener on 127.0.0.1 and waits; another twin's run, asked over RequestExecution meanwhile,
// tries to reach it and says which uid it has.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

constexpr char listener_py[] = R"(import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print("ready", s.getsockname()[1], os.getuid(), flush=True)
go = os.path.join(os.environ["PAGI_WORKSPACE"], "go")
while not os.path.exists(go):
    time.sleep(0.01)
)";

}  // namespace

TEST_SUITE("native_e2e") {
  TEST_CASE("native: another twin's concurrent run has another uid and cannot reach a listener on 127.0.0.1" *
            test_support::skip_if(::geteuid() != 0,
                                  "the network namespace pool and the uid pool need a server running as root")) {
    Server server({.env = {{"TOOLS_ISOLATION", "native"}, {"TOOLS_REQUIRE_ISOLATION", "true"}}});
    const auto a_dir = server.sandbox_dir() / "twin-aegis";
    std::filesystem::create_directories(a_dir);
    std::ofstream(a_dir / "listen.py") << listener_py;

    tools::ExecutionRequest a;
    a.set_twin_id("twin-aegis");
    a.set_command("command_exec");
    a.add_args("/usr/bin/python3 \"$PAGI_WORKSPACE/listen.py\"");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    auto reader = server.stub().StreamExecution(&context, a);
    std::string out;
    for (tools::ExecutionEvent event; out.find('\n') == std::string::npos && reader->Read(&event);) {
      if (event.event_case() == tools::ExecutionEvent::kStdout) out += event.stdout().data();
    }
    REQUIRE(out.rfind("ready ", 0) == 0);
    std::istringstream fields(out.substr(6));
    std::string port, a_uid;
    fields >> port >> a_uid;

    const auto b = execute(server.stub(), "twin-sentinel", "command_exec",
                           {"id -u; /usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", " + port +
                                "), timeout=5)' 2>/dev/null && echo reached || echo refused"},
                           30s);
    std::ofstream(a_dir / "go") << "go";
    for (tools::ExecutionEvent event; reader->Read(&event);) {}
    CHECK(reader->Finish().ok());
    REQUIRE(b.status.ok());
    REQUIRE(b.response.stdout_logs_size() == 2);
    MESSAGE("run A: uid " << a_uid << ", listening on 127.0.0.1:" << port << "; run B at the same time: uid "
                          << b.response.stdout_logs(0) << ", " << b.response.stdout_logs(1));
    CHECK(b.response.stdout_logs(1) == "refused");
    CHECK(b.response.stdout_logs(0) != a_uid);
    CHECK(b.response.stdout_logs(0) != "65534");
    CHECK(a_uid != "65534");
  }
}
