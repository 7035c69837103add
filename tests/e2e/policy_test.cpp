// SPDX-License-Identifier: Apache-2.0
// E2E: the policy file — loading, CheckPolicy dry runs, SIGHUP reload under load, broken files.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

constexpr const char* grants_echo = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
[twins.twin-trace]
allow = ["vector_query", "echo"]
[twins.twin-trace.limits]
timeout_ms = 1500
[tools.vector_query]
program = "/usr/bin/printf"
args = ["vector:%s\n"]
)";

constexpr const char* refuses_echo = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
[twins.twin-trace]
allow = ["vector_query"]
)";

tools::PolicyDecision check(Server& server, const std::string& twin, const std::string& command,
                            std::vector<std::string> args = {}) {
  grpc::ClientContext context;
  tools::ExecutionRequest request;
  request.set_twin_id(twin);
  request.set_command(command);
  for (auto& a : args) request.add_args(a);
  tools::PolicyDecision decision;
  REQUIRE(server.stub().CheckPolicy(&context, request, &decision).ok());
  return decision;
}

void write(const std::filesystem::path& path, const char* text) {
  const auto tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);  // what an editor or config tool does: no half-written file
}

}  // namespace

TEST_SUITE("policy file") {
  TEST_CASE("the file's grants, tools and limits apply; CheckPolicy answers without running anything") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    write(file, grants_echo);
    Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}}});
    const auto echo = check(server, "twin-trace", "echo", {"hi"});
    CHECK(echo.allowed());
    CHECK(echo.rule() == "twins.twin-trace.allow[echo]");
    CHECK(echo.limits().timeout_ms() == 1500);
    CHECK(echo.policy_revision() != "builtin");
    const auto shell = check(server, "twin-aegis", "command_exec", {"ls; rm -rf ~"});
    CHECK_FALSE(shell.allowed());
    CHECK(shell.rule().rfind("always_refused[", 0) == 0);
    CHECK_FALSE(std::filesystem::exists(server.sandbox_dir() / "twin-trace"));  // a dry run creates nothing

    const auto vector = execute(server.stub(), "twin-trace", "vector_query", {"q"});
    CHECK(vector.response.success());
    CHECK(vector.response.stdout_logs(0) == "vector:q");  // the catalog maps it to a program
    const auto slow = execute(server.stub(), "twin-trace", "echo", {"x"});
    CHECK(slow.response.success());
  }

  TEST_CASE("CheckPolicy says what a run would reach on the network under the server's isolation") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    write(file, R"(
[twins.twin-fetch]
allow = ["curl"]
network = "egress"
allow_domains = ["pypi.org", "*.pythonhosted.org:443"]
deny_domains = ["bad.pythonhosted.org"]
[twins.twin-closed]
allow = ["curl"]
)");
    struct Row {
      std::string isolation, fetch_mode, closed_mode;
    };
    for (const Row& row : {Row{"native", "egress", "none"}, Row{"bwrap", "none", "none"}, Row{"cwd", "host", "host"}}) {
      CAPTURE(row.isolation);
      Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}, {"TOOLS_ISOLATION", row.isolation},
                             {"TOOLS_REQUIRE_ISOLATION", "true"}}});
      const auto fetch = check(server, "twin-fetch", "curl");
      CHECK(fetch.allowed());
      CHECK(fetch.network_mode() == row.fetch_mode);
      CHECK(fetch.network() == (row.fetch_mode != "none"));
      if (row.fetch_mode == "egress") {
        CHECK(std::vector<std::string>(fetch.allow_domains().begin(), fetch.allow_domains().end()) ==
              std::vector<std::string>{"pypi.org", "*.pythonhosted.org:443"});
        CHECK(std::vector<std::string>(fetch.deny_domains().begin(), fetch.deny_domains().end()) ==
              std::vector<std::string>{"bad.pythonhosted.org"});
      } else {
        CHECK(fetch.allow_domains().empty());
      }
      CHECK(check(server, "twin-closed", "curl").network_mode() == row.closed_mode);
      const auto refused = check(server, "twin-closed", "wget");
      CHECK_FALSE(refused.allowed());
      CHECK(refused.network_mode().empty());
      CHECK_FALSE(refused.network());
    }
  }

  TEST_CASE("a broken file stops start-up with file, line and column") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    std::ofstream(file) << "[twins.twin-aegis]\nallow = [\"*\"]\nalow = [\"echo\"]\n";
    const auto [code, err] = e2e::run_expecting_exit({{"TOOLS_POLICY_FILE", file.string()}});
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(err.find(file.string() + ":3:") != std::string::npos);
  }

  TEST_CASE("SIGHUP swaps the policy under load: no request fails or sees a half-loaded policy") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    write(file, grants_echo);
    Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}}});
    std::atomic<bool> done{false};
    std::atomic<int> calls{0}, errors{0}, odd{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 3; ++t) {
      clients.emplace_back([&] {
        while (!done) {
          const auto call = execute(server.stub(), "twin-trace", "echo", {"x"});
          ++calls;
          if (!call.status.ok()) {
            ++errors;
          } else if (!(call.response.success() || call.response.policy_rule() == "default_deny")) {
            ++odd;  // allowed by the old policy or refused by the new one; nothing else
          }
        }
      });
    }
    for (int i = 0; i < 10; ++i) {
      write(file, i % 2 == 0 ? refuses_echo : grants_echo);
      ::kill(server.process().pid(), SIGHUP);
      std::this_thread::sleep_for(50ms);
    }
    done = true;
    for (auto& c : clients) c.join();
    CHECK(calls > 10);
    CHECK(errors == 0);
    CHECK(odd == 0);
    // The last write granted echo again; once that reload is in, twin-trace runs echo.
    bool granted = false;
    for (int i = 0; i < 100 && !granted; ++i, std::this_thread::sleep_for(20ms)) granted = check(server, "twin-trace", "echo").allowed();
    CHECK(granted);
  }

  TEST_CASE("a broken file on reload keeps the old policy and says why") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    write(file, grants_echo);
    Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}}});
    const auto revision = check(server, "twin-trace", "echo").policy_revision();
    std::ofstream(file) << "[twins.twin-trace]\nallow = \"echo\"\n";  // a string, not an array
    ::kill(server.process().pid(), SIGHUP);
    bool logged = false;
    for (int i = 0; i < 100 && !logged; ++i, std::this_thread::sleep_for(20ms)) {
      logged = server.process().stderr_text().find("policy NOT reloaded") != std::string::npos;
    }
    CHECK(logged);
    const auto still = check(server, "twin-trace", "echo");
    CHECK(still.allowed());
    CHECK(still.policy_revision() == revision);
    // HealthCheck says so until a reload succeeds.
    const auto degraded = e2e::health(server);
    CHECK(degraded.status() == "degraded");
    CHECK(degraded.message().rfind("Tool executor service is operational but degraded (last policy reload failed", 0) == 0);
    write(file, refuses_echo);
    ::kill(server.process().pid(), SIGHUP);
    bool reloaded = false;
    for (int i = 0; i < 100 && !reloaded; ++i, std::this_thread::sleep_for(20ms)) {
      reloaded = server.process().stderr_text().find("policy reloaded from") != std::string::npos;
    }
    REQUIRE(reloaded);
    CHECK(e2e::health(server).status() == "healthy");
  }

  TEST_CASE("safe mode switched on by reload refuses the shell bridge") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    write(file, grants_echo);
    Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}}});
    CHECK(check(server, "twin-aegis", "command_exec", {"ls"}).allowed());
    write(file, (std::string("safe_mode = true\n") + grants_echo).c_str());
    ::kill(server.process().pid(), SIGHUP);
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i, std::this_thread::sleep_for(20ms)) {
      refused = !check(server, "twin-aegis", "command_exec", {"ls"}).allowed();
    }
    CHECK(refused);
  }
}
