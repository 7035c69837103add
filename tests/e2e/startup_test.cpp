// SPDX-License-Identifier: Apache-2.0
// E2E: the default start-up is safe (issue 8, items 10 and 11). No unauthenticated serving
// beyond loopback unless asked for; the strongest isolation that works, stated everywhere; every
// twin granted the host's network named; failed authentications and audit failures in the log.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

constexpr const char* network_policy = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
network = "host"
[twins.twin-trace]
allow = ["vector_query"]
[twins.twin-fetch]
allow = ["*"]
network = "egress"
allow_domains = ["pypi.org"]
)";

constexpr const char* more_network_policy = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
network = "host"
[twins.twin-trace]
allow = ["vector_query"]
network = "host"
)";

}  // namespace

TEST_SUITE("startup") {
  TEST_CASE("serving beyond loopback without authentication is refused at start-up, with how to fix it") {
    for (const std::string listen : {"0.0.0.0:0", "[::]:0"}) {
      CAPTURE(listen);
      const auto [code, err] = e2e::run_expecting_exit({}, {}, listen);
      REQUIRE(code);
      CHECK(*code == 2);
      CHECK(err.find("TOOLS_GRPC_ADDR") != std::string::npos);
      CHECK(err.find("TOOLS_AUTH=token or mtls") != std::string::npos);
      CHECK(err.find("127.0.0.1") != std::string::npos);
      CHECK(err.find("TOOLS_AUTH=none") != std::string::npos);
    }
    // The same through the seed's port variable is loopback now, and starts.
  }

  TEST_CASE("TOOLS_AUTH=none given on purpose serves beyond loopback, with a loud warning") {
    Server server({.env = {{"TOOLS_AUTH", "none"}}, .listen = "0.0.0.0:0"});
    CHECK(health(server).status() == "healthy");
    CHECK(server.process().stderr_text().find("WITHOUT AUTHENTICATION (TOOLS_AUTH=none was set)") != std::string::npos);
  }

  TEST_CASE("with no address given, the server listens on loopback at TOOLS_GRPC_PORT") {
    e2e::TempDir dir;
    const int port = free_port();
    e2e::Process process({e2e::server_binary()},
                         {{"PATH", "/usr/bin:/bin"}, {"SANDBOX_DIR", (dir.path() / "sandbox").string()},
                          {"TOOLS_ISOLATION", "cwd"}, {"TOOLS_GRPC_PORT", std::to_string(port)}},
                         dir.path() / "stderr");
    const auto line = process.first_line();
    CAPTURE(process.stderr_text());
    REQUIRE(line);
    CHECK(*line == "listening on 127.0.0.1:" + std::to_string(port));
  }

  TEST_CASE("by default the isolation is the strongest that works, stated at start-up, in HealthCheck and each response") {
    for (const std::string setting : {"", "auto"}) {  // unset, and given
      CAPTURE(setting);
      Server server({.env = {{"TOOLS_ISOLATION", setting}}});
      const auto report = health(server);
      CAPTURE(report.message());
      CHECK(report.status() == "healthy");
      CHECK(report.message().find(" (auto: ") != std::string::npos);
      const auto ran = execute(server.stub(), "twin-aegis", "echo", {"hi"});
      REQUIRE(ran.status.ok());
      CHECK(ran.response.success());
      CHECK(report.message().find("isolation=" + ran.response.isolation() + " (auto: ") != std::string::npos);
      CHECK(server.process().stderr_text().find("isolation " + ran.response.isolation() + ": auto: ") !=
            std::string::npos);
      const auto refused = execute(server.stub(), "twin-aegis", "rm", {"-rf", "/"});
      CHECK(refused.response.isolation() == ran.response.isolation());  // every response says it
      const auto missing = execute(server.stub(), "twin-aegis", "no-such-program-4711");
      CHECK(missing.response.exit_code() == 127);
      CHECK(missing.response.isolation() == ran.response.isolation());
      if (::geteuid() == 0) {  // CI runs as root, where native works: auto must not settle for less
        CHECK(ran.response.isolation() == "native");
        CHECK(report.message().find("isolation=native (auto: native works here)") != std::string::npos);
      }
    }
  }

  TEST_CASE("every twin granted the host's network is named at start-up, after a reload and in HealthCheck") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << network_policy;
    Server server({.env = {{"TOOLS_ISOLATION", "native"}, {"TOOLS_POLICY_FILE", policy.string()},
                           {"TOOLS_ALLOW_HOST_NETWORK", "true"}}});
    const auto report = health(server);
    CAPTURE(report.message());
    if (report.message().find("isolation=native") == std::string::npos) {
      test_support::skip_case("native isolation does not work here");
      return;
    }
    CHECK(report.message().find("HOST NETWORK for twins twin-aegis (policy network = \"host\")") != std::string::npos);
    CHECK(report.message().find("this server's port") != std::string::npos);
    CHECK(server.process().stderr_text().find("WARN !!! WARNING: HOST NETWORK for twins twin-aegis (") !=
          std::string::npos);
    {  // the reload names the twins of the new policy
      const auto tmp = dir.path() / "policy.tmp";
      std::ofstream(tmp) << more_network_policy;
      std::filesystem::rename(tmp, policy);
    }
    ::kill(server.process().pid(), SIGHUP);
    CHECK(e2e::eventually([&] {
      return server.process().stderr_text().find("HOST NETWORK for twins twin-aegis,twin-trace") != std::string::npos;
    }));
    CHECK(health(server).message().find("HOST NETWORK for twins twin-aegis,twin-trace") != std::string::npos);
  }

  TEST_CASE("no host-network warning when no twin has it; safe mode grants none") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << network_policy;
    for (const e2e::Env& env : {e2e::Env{{"TOOLS_ISOLATION", "native"}},
                                e2e::Env{{"TOOLS_ISOLATION", "native"}, {"TOOLS_POLICY_FILE", policy.string()},
                                         {"SAFE_MODE", "true"}, {"TOOLS_ALLOW_HOST_NETWORK", "true"}}}) {
      Server server({.env = env});
      const auto report = health(server);
      CAPTURE(report.message());
      if (report.message().find("isolation=native") == std::string::npos) return;  // no native here
      CHECK(report.message().find("HOST NETWORK") == std::string::npos);
      CHECK(server.process().stderr_text().find("HOST NETWORK") == std::string::npos);
    }
    // In cwd every twin shares the host's network, and is named.
    Server cwd;
    CHECK(health(cwd).message().find("HOST NETWORK for twins twin-aegis,twin-sentinel,twin-trace (isolation cwd") !=
          std::string::npos);
  }

  TEST_CASE("network = \"host\" needs TOOLS_ALLOW_HOST_NETWORK: refused at start-up and at reload, with what to write") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << network_policy;
    const auto [code, err] = e2e::run_expecting_exit({{"TOOLS_POLICY_FILE", policy.string()}});
    REQUIRE(code);
    CHECK(*code == 2);
    CAPTURE(err);
    CHECK(err.find("twins.twin-aegis: network = \"host\" gives its runs the host's whole network") != std::string::npos);
    CHECK(err.find("TOOLS_ALLOW_HOST_NETWORK=true") != std::string::npos);
    CHECK(err.find("network = \"egress\" with allow_domains") != std::string::npos);

    // A server that started without it keeps its policy when a reload asks for the host's network.
    std::ofstream(policy) << "[twins.twin-aegis]\nallow = [\"*\"]\n";
    Server server({.env = {{"TOOLS_POLICY_FILE", policy.string()}}});
    const auto tmp = dir.path() / "policy.tmp";
    std::ofstream(tmp) << network_policy;
    std::filesystem::rename(tmp, policy);
    ::kill(server.process().pid(), SIGHUP);
    CHECK(e2e::eventually([&] {
      return server.process().stderr_text().find("policy NOT reloaded, the old one stays in effect") != std::string::npos;
    }));
    CHECK(server.process().stderr_text().find("TOOLS_ALLOW_HOST_NETWORK") != std::string::npos);
    CHECK(execute(server.stub(), "twin-aegis", "true").response.success());  // the old policy serves on
    CHECK(health(server).message().find("last policy reload failed") != std::string::npos);
  }

  TEST_CASE("the old boolean network stops start-up with what to write instead") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << "[twins.twin-aegis]\nallow = [\"*\"]\nnetwork = true\n";
    const auto [code, err] = e2e::run_expecting_exit({{"TOOLS_POLICY_FILE", policy.string()}});
    REQUIRE(code);
    CHECK(*code == 2);
    CAPTURE(err);
    CHECK(err.find(policy.string() + ":3:11: twins.twin-aegis.network = true is the old boolean form") != std::string::npos);
    CHECK(err.find("network = \"egress\" with allow_domains") != std::string::npos);
  }

  TEST_CASE("egress twins under bwrap are named at start-up: they have no network there") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << "[twins.twin-fetch]\nallow = [\"*\"]\nnetwork = \"egress\"\nallow_domains = [\"pypi.org\"]\n";
    Server server({.env = {{"TOOLS_ISOLATION", "bwrap"}, {"TOOLS_POLICY_FILE", policy.string()}}});
    if (health(server).message().find("isolation=bwrap") == std::string::npos) {
      test_support::skip_case("bwrap does not work here");
      return;
    }
    CHECK(server.process().stderr_text().find("twins twin-fetch have network = \"egress\", which needs isolation native") !=
          std::string::npos);
  }

  TEST_CASE("audit write failures are logged, and repeats are held back") {
    // /dev/full opens for appending and fails every write with ENOSPC: a full disk.
    Server server({.env = {{"TOOLS_AUDIT_LOG", "/dev/full"}}});
    constexpr int calls = 5;  // two records each: decision and execution
    for (int i = 0; i < calls; ++i) REQUIRE(execute(server.stub(), "twin-aegis", "true").status.ok());
    const auto log = server.process().stderr_text();
    CAPTURE(log);
    const auto lines = count(log, "audit record NOT written");
    CHECK(lines >= 1);
    CHECK(lines < 2 * calls);  // rate-limited: not one line per failed record
    CHECK(log.find("No space left on device") != std::string::npos);
    CHECK(health(server).status() == "degraded");
  }
}
