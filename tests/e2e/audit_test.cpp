// SPDX-License-Identifier: Apache-2.0
// E2E: the durable audit log behind the real server: what is recorded, kill -9, rotation with
// SIGHUP, and an audit log that fails, required or not.
#include <doctest/doctest.h>

#include <set>
#include <thread>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;

namespace {

std::set<std::string> ids_of(const pagi_exec::AuditReport& report, std::string_view type) {
  std::set<std::string> ids;
  for (const auto& entry : report.entries) {
    if (entry.type == type) ids.insert(entry.execution_id);
  }
  return ids;
}

}  // namespace

TEST_SUITE("audit") {
  TEST_CASE("decisions (refusals too) and executions are recorded; kill -9 loses none that were answered") {
    e2e::TempDir dir;
    const auto log = dir.path() / "audit.jsonl";
    Server server({.env = {{"TOOLS_AUDIT_LOG", log.string()}}});
    std::set<std::string> answered;
    for (int i = 0; i < 20; ++i) {
      const auto call = i % 4 == 3 ? execute(server.stub(), "twin-trace", "echo", {"refused"})
                                   : execute(server.stub(), "twin-aegis", "echo", {std::to_string(i)});
      REQUIRE(call.status.ok());
      answered.insert(call.response.execution_id());
    }
    const auto timed = execute(server.stub(), "twin-aegis", "command_exec", {"exit 5"});
    REQUIRE(timed.status.ok());
    answered.insert(timed.response.execution_id());
    ::kill(server.process().pid(), SIGKILL);
    REQUIRE(server.process().wait_exit(std::chrono::seconds(5)));

    const auto report = pagi_exec::read_audit_log(log, {});
    REQUIRE(report);
    CHECK(report->torn_lines <= 1);
    CHECK(report->bad_lines == 0);
    const auto decided = ids_of(*report, "decision");
    const auto executed = ids_of(*report, "execution");
    for (const auto& id : answered) {
      CAPTURE(id);
      CHECK(decided.count(id) == 1);
    }
    CHECK(report->refused == 5);
    CHECK(executed.size() == 16);  // the 15 echoes and exit 5; refusals run nothing
    CHECK(report->failed == 1);
  }

  TEST_CASE("SIGHUP reopens the log after logrotate moved it") {
    e2e::TempDir dir;
    const auto log = dir.path() / "audit.jsonl";
    Server server({.env = {{"TOOLS_AUDIT_LOG", log.string()}}});
    REQUIRE(execute(server.stub(), "twin-aegis", "true", {}).status.ok());
    std::filesystem::rename(log, dir.path() / "audit.jsonl.1");
    ::kill(server.process().pid(), SIGHUP);
    const auto after = execute(server.stub(), "twin-aegis", "true", {});
    REQUIRE(after.status.ok());
    const auto fresh = pagi_exec::read_audit_log(log, {});
    REQUIRE(fresh);
    CHECK(ids_of(*fresh, "execution").count(after.response.execution_id()) == 1);
    const auto old = pagi_exec::read_audit_log(dir.path() / "audit.jsonl.1", {});
    REQUIRE(old);
    CHECK(old->executions == 1);
    bool reopened = false;  // the signal is handled on the server's main thread, in its own time
    for (int i = 0; i < 200 && !reopened; ++i) {
      reopened = server.process().stderr_text().find("audit log reopened") != std::string::npos;
      if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(reopened);
  }

  TEST_CASE("an unwritable audit log: required refuses to run, otherwise serving goes on and HealthCheck says so") {
    for (const bool required : {true, false}) {
      CAPTURE(required);
      e2e::TempDir dir;
      const auto folder = dir.path() / "logs";
      std::filesystem::create_directories(folder);
      Server server({.env = {{"TOOLS_AUDIT_LOG", (folder / "audit.jsonl").string()},
                             {"TOOLS_AUDIT_REQUIRED", required ? "true" : "false"}}});
      REQUIRE(execute(server.stub(), "twin-aegis", "true", {}).response.success());
      std::filesystem::remove_all(folder);  // the log and its folder vanish: it cannot be reopened
      const auto pidfile = server.scratch() / "ran";
      const auto call = execute(server.stub(), "twin-aegis", "command_exec", {"touch " + pidfile.string()});
      if (required) {
        CHECK(call.status.error_code() == grpc::StatusCode::UNAVAILABLE);
        CHECK(call.status.error_message().find("audit log") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(pidfile));  // nothing ran
      } else {
        CHECK(call.response.success());
        CHECK(std::filesystem::exists(pidfile));
      }
      const auto failing = health(server);
      CHECK(failing.status() == "degraded");
      CHECK(failing.message().rfind("Tool executor service is operational but degraded (audit log failing: ", 0) == 0);
      CHECK(failing.message().find("AUDIT LOG FAILING") != std::string::npos);
      std::filesystem::create_directories(folder);  // the operator fixes it: recording resumes
      CHECK(execute(server.stub(), "twin-aegis", "true", {}).response.success());
      CHECK(health(server).status() == "healthy");
    }
  }
}
