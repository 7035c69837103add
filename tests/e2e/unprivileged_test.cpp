// SPDX-License-Identifier: Apache-2.0
// End-to-end: the built tools-server, run as root, never runs a command as host root (issue 8,
// items 1 and 2): the attacks of the issue, through the generated stub.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "server_fixture.hpp"

namespace {

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

const bool not_root = ::geteuid() != 0;

std::vector<std::string> lines(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

// The modes to try: cwd, and bwrap when it is installed. Each server must get the mode it asks
// for (TOOLS_REQUIRE_ISOLATION), or the test would prove nothing.
std::vector<e2e::Env> modes() {
  std::vector<e2e::Env> envs{{{"TOOLS_ISOLATION", "cwd"}}};
  const char* bwrap = std::getenv("PAGI_EXEC_BWRAP");
  if (bwrap != nullptr && *bwrap != '\0') {
    envs.push_back({{"TOOLS_ISOLATION", "bwrap"}, {"TOOLS_BWRAP_PATH", bwrap}, {"TOOLS_REQUIRE_ISOLATION", "true"}});
  }
  return envs;
}

// Alive host processes whose argv is exactly `sleep <mark>`.
bool sleeper_alive(const std::string& mark) {
  return !test_support::pids_with_cmdline(std::string("sleep") + '\0' + mark + '\0').empty();
}

bool setuid_root_file_under(const std::filesystem::path& root) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec); it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_ISUID) != 0 && st.st_uid == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_SUITE("unprivileged_e2e") {
  TEST_CASE("a root server runs cwd and bwrap commands as 65534, and /proc/sys stays unwritable" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    for (const auto& env : modes()) {
      CAPTURE(env.at("TOOLS_ISOLATION"));
      Server server({.env = env});
      const auto call = execute(server.stub(), "twin-sentinel", "command_exec",
                                {"id -u; cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && echo WRITABLE"});
      REQUIRE(call.status.ok());
      CHECK(call.response.isolation() == env.at("TOOLS_ISOLATION"));
      CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"65534"});
      CHECK(server.process().stderr_text().find("commands run as 65534:65534") != std::string::npos);
    }
  }

  TEST_CASE("TOOLS_RUN_AS_UID and TOOLS_RUN_AS_GID choose the uid; 0 without TOOLS_RUN_AS_ROOT refuses to start" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    Server server({.env = {{"TOOLS_RUN_AS_UID", "4242"}, {"TOOLS_RUN_AS_GID", "4343"}}});
    const auto call = execute(server.stub(), "twin-sentinel", "command_exec", {"id -u; id -g"});
    CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"4242", "4343"});
    for (const char* name : {"TOOLS_RUN_AS_UID", "TOOLS_RUN_AS_GID"}) {
      CAPTURE(name);
      const auto [code, err] = e2e::run_expecting_exit({{name, "0"}});
      REQUIRE(code);
      CHECK(*code == 2);
      CHECK(err.find("TOOLS_RUN_AS_ROOT") != std::string::npos);
    }
  }

  TEST_CASE("TOOLS_RUN_AS_ROOT=true keeps the original's behaviour and warns at start-up" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    Server server({.env = {{"TOOLS_RUN_AS_ROOT", "true"}}});
    const auto call = execute(server.stub(), "twin-sentinel", "command_exec", {"id -u"});
    CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"0"});
    CHECK(server.process().stderr_text().find("WARN !!! TOOLS_RUN_AS_ROOT=true") != std::string::npos);
  }

  TEST_CASE("kill -9 $PPID: the call answers within the limit and no process of the run survives" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    for (auto env : modes()) {
      CAPTURE(env.at("TOOLS_ISOLATION"));
      env["TOOLS_EXEC_TIMEOUT_MS"] = "3000";
      Server server({.env = env});
      const std::string mark = "1000." + std::to_string(::getpid()) + std::to_string(env.at("TOOLS_ISOLATION").size());
      const auto call = execute(server.stub(), "twin-aegis", "sh", {"-c", "sleep " + mark + " & kill -9 $PPID; sleep 1"});
      REQUIRE(call.status.ok());
      CHECK(call.response.success());  // the supervisor survived and reported
      CHECK_FALSE(sleeper_alive(mark));
    }
  }

  TEST_CASE("no mode lets a command plant a setuid-root file in the sandbox dir" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    auto envs = modes();
    envs.push_back({{"TOOLS_ISOLATION", "native"}});
    for (const auto& env : envs) {
      CAPTURE(env.at("TOOLS_ISOLATION"));
      Server server({.env = env});
      const auto call = execute(server.stub(), "twin-sentinel", "command_exec",
                                {"cp /bin/sh \"$PAGI_WORKSPACE/s\"; chmod 4755 \"$PAGI_WORKSPACE/s\"; cp /bin/sh s2; chmod 4755 s2"});
      REQUIRE(call.status.ok());
      CHECK_FALSE(setuid_root_file_under(server.sandbox_dir()));
    }
  }
}
