// SPDX-License-Identifier: Apache-2.0
// End-to-end: the built tools-server, started as a process, checked through the generated stub.
// gcc 12 under AddressSanitizer reports -Wmaybe-uninitialized inside std::regex (its
// std::function members, seen only on the instrumentation's extra paths), and the sanitized
// build (scripts/sanitize.sh) turns warnings into errors.
#if defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <doctest/doctest.h>

#include <atomic>
#include <regex>
#include <set>
#include <thread>

#include <pagi_exec/version.hpp>

#include "server_fixture.hpp"

namespace {

using e2e::Call;
using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

bool is_uuid_v4(const std::string& text) {
  static const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(text, uuid);
}

std::vector<std::string> lines(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

// The wire shape of a refusal that clients of the seed service parse.
void check_refusal(const Call& call) {
  REQUIRE(call.status.ok());
  CHECK_FALSE(call.response.success());
  CHECK(call.response.exit_code() == 1);
  CHECK_FALSE(call.response.message().empty());
  REQUIRE(call.response.stderr_logs_size() >= 1);
  CHECK(call.response.stderr_logs(0) == "Policy violation: " + call.response.message());
  CHECK_FALSE(call.response.policy_rule().empty());
  CHECK(is_uuid_v4(call.response.execution_id()));
}

// A shell line for command_exec: starts `sleep <secs>` in the background, writes its pid to
// `pid_file`, waits. Killing the shell alone would leave the sleep running: the tree must die.
std::string sleeper(const std::filesystem::path& pid_file, int secs) {
  return "sleep " + std::to_string(secs) + " & echo $! > '" + pid_file.string() + "'; wait";
}

// Starts a server with `kind` isolation; unless it fell back (this machine cannot do it), the
// very first request must work (no start-up stall), the workspace must be reachable inside and
// the test's own folder must not.
void check_isolated_server(const std::string& kind, e2e::Env env) {
  env["TOOLS_EXEC_TIMEOUT_MS"] = "5000";
  Server server({.env = env});
  grpc::ClientContext context;
  tools::HealthCheckResponse health;
  REQUIRE(server.stub().HealthCheck(&context, google::protobuf::Empty(), &health).ok());
  if (health.status() != "healthy") {
    test_support::skip_case(kind + " isolation does not work on this machine: " + health.message());
    return;
  }
  CHECK(health.message().find("isolation=" + kind) != std::string::npos);
  auto& stub = server.stub();
  const auto echo = execute(stub, "twin-aegis", "echo", {"inside"});
  CHECK(echo.response.success());
  CHECK(lines(echo.response.stdout_logs()) == std::vector<std::string>{"inside"});
  CHECK(echo.response.isolation() == kind);
  REQUIRE(execute(stub, "twin-sentinel", "file_write", {"notes.txt", "kept\n"}).response.success());
  const auto read = execute(stub, "twin-sentinel", "command_exec", {"cat \"$PAGI_WORKSPACE/notes.txt\""});
  CHECK(lines(read.response.stdout_logs()) == std::vector<std::string>{"kept"});
  // The test's scratch folder is on the host, outside the workspace: invisible inside.
  std::ofstream(server.scratch() / "host-secret.txt") << "secret\n";
  const auto secret = execute(stub, "twin-aegis", "cat", {(server.scratch() / "host-secret.txt").string()});
  CHECK_FALSE(secret.response.success());
}

}  // namespace

TEST_SUITE("server") {
  TEST_CASE("echo via twin-aegis succeeds with its stdout lines and a fresh uuid v4 execution id") {
    Server server;
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      const auto call = execute(server.stub(), "twin-aegis", "echo", {"hello", "world"});
      REQUIRE(call.status.ok());
      CHECK(call.response.success());
      CHECK(call.response.exit_code() == 0);
      CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"hello world"});
      CHECK(call.response.stderr_logs_size() == 0);
      CHECK(is_uuid_v4(call.response.execution_id()));
      CHECK(call.response.isolation() == "cwd");
      CHECK(call.response.policy_rule() == "twins.twin-aegis.allow[*]");
      CHECK_FALSE(call.response.timed_out());
      ids.insert(call.response.execution_id());
    }
    CHECK(ids.size() == 3);
  }

  TEST_CASE("policy refusals are OK with success=false, exit_code 1 and a 'Policy violation: ' line") {
    Server server;
    auto& stub = server.stub();
    SUBCASE("unknown twin") { check_refusal(execute(stub, "twin-nobody", "echo", {"x"})); }
    SUBCASE("empty twin") { check_refusal(execute(stub, "", "echo", {"x"})); }
    SUBCASE("twin-trace may not run echo") {
      const auto call = execute(stub, "twin-trace", "echo", {"x"});
      check_refusal(call);
      CHECK(call.response.policy_rule() == "default_deny");
    }
    SUBCASE("rm, /bin/rm and ../../bin/rm are refused even for twin-aegis") {
      for (const char* rm : {"rm", "/bin/rm", "../../bin/rm"}) {
        CAPTURE(rm);
        const auto call = execute(stub, "twin-aegis", rm, {"-rf", "/"});
        check_refusal(call);
        CHECK(call.response.policy_rule() == "always_refused[rm]");
      }
    }
  }

  TEST_CASE("command_exec runs args[0] through /bin/sh for twin-sentinel") {
    Server server;
    const auto call = execute(server.stub(), "twin-sentinel", "command_exec", {"echo a; echo b >&2"});
    REQUIRE(call.status.ok());
    CHECK(call.response.success());
    CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"a"});
    CHECK(lines(call.response.stderr_logs()) == std::vector<std::string>{"b"});
  }

  TEST_CASE("exit codes: 1 for false, 127 for a missing program, 126 for a non-executable file") {
    Server server;
    auto& stub = server.stub();
    SUBCASE("false") {
      const auto call = execute(stub, "twin-aegis", "false");
      REQUIRE(call.status.ok());
      CHECK_FALSE(call.response.success());
      CHECK(call.response.exit_code() == 1);
    }
    SUBCASE("missing program") {
      const auto call = execute(stub, "twin-aegis", "no-such-program-pagi-e2e");
      REQUIRE(call.status.ok());
      CHECK_FALSE(call.response.success());
      CHECK(call.response.exit_code() == 127);
    }
    SUBCASE("non-executable file, by relative and by absolute path") {
      REQUIRE(execute(stub, "twin-aegis", "file_write", {"script.sh", "echo hi\n"}).response.success());
      const auto absolute = (server.sandbox_dir() / "twin-aegis" / "script.sh").string();
      for (const auto& path : {std::string("../script.sh"), absolute}) {
        CAPTURE(path);
        const auto call = execute(stub, "twin-aegis", path);
        REQUIRE(call.status.ok());
        CHECK_FALSE(call.response.success());
        CHECK(call.response.exit_code() == 126);
      }
    }
  }

  TEST_CASE("a command past TOOLS_EXEC_TIMEOUT_MS ends with 124 and execution_timeout") {
    Server server({.env = {{"TOOLS_EXEC_TIMEOUT_MS", "500"}}});
    const auto call = execute(server.stub(), "twin-aegis", "sleep", {"10"});
    REQUIRE(call.status.ok());
    CHECK_FALSE(call.response.success());
    CHECK(call.response.exit_code() == 124);
    CHECK(call.response.message() == "execution_timeout");
    CHECK(call.response.timed_out());
  }

  TEST_CASE("output past the line cap is cut and reported") {
    Server server({.env = {{"TOOLS_MAX_OUTPUT_LINES", "3"}}});
    const auto call = execute(server.stub(), "twin-aegis", "seq", {"10"});
    REQUIRE(call.status.ok());
    CHECK(call.response.success());
    CHECK(lines(call.response.stdout_logs()) == std::vector<std::string>{"1", "2", "3"});
    CHECK(call.response.stdout_truncated());
    CHECK_FALSE(call.response.stderr_truncated());
  }

  TEST_CASE("file_write puts a file in the twin's workspace, where its commands find it") {
    Server server;
    auto& stub = server.stub();
    const auto wrote = execute(stub, "twin-sentinel", "file_write", {"notes.txt", "first line\nsecond line\n"});
    REQUIRE(wrote.status.ok());
    CHECK(wrote.response.success());
    for (const char* line : {"cat ../notes.txt", "cat \"$PAGI_WORKSPACE/notes.txt\""}) {
      CAPTURE(line);
      const auto read = execute(stub, "twin-sentinel", "command_exec", {line});
      REQUIRE(read.status.ok());
      CHECK(read.response.success());
      CHECK(lines(read.response.stdout_logs()) == std::vector<std::string>{"first line", "second line"});
    }
    SUBCASE("another twin has its own workspace") {
      const auto other = execute(stub, "twin-aegis", "cat", {"../notes.txt"});
      REQUIRE(other.status.ok());
      CHECK_FALSE(other.response.success());
      REQUIRE(execute(stub, "twin-aegis", "file_write", {"own.txt", "aegis"}).response.success());
      const auto own = execute(stub, "twin-aegis", "cat", {"../own.txt"});
      CHECK(lines(own.response.stdout_logs()) == std::vector<std::string>{"aegis"});
    }
  }

  TEST_CASE("file_write outside the workspace is a usage error answered in-band (exit 2), nothing written") {
    Server server;
    for (const char* path : {"../x", "/etc/x"}) {
      CAPTURE(path);
      const auto call = execute(server.stub(), "twin-sentinel", "file_write", {path, "data"});
      REQUIRE(call.status.ok());
      CHECK_FALSE(call.response.success());
      CHECK(call.response.exit_code() == 2);
      CHECK(call.response.message().find(path) != std::string::npos);
      REQUIRE(call.response.stderr_logs_size() == 1);
      CHECK(call.response.stderr_logs(0) == call.response.message());
    }
    CHECK_FALSE(std::filesystem::exists(server.sandbox_dir() / "x"));
  }

  TEST_CASE("vector_query answers 127: this server has no program for it") {
    Server server;
    const auto call = execute(server.stub(), "twin-trace", "vector_query", {"what"});
    REQUIRE(call.status.ok());
    CHECK_FALSE(call.response.success());
    CHECK(call.response.exit_code() == 127);
    CHECK(call.response.message().find("no program") != std::string::npos);
  }

  TEST_CASE("HealthCheck answers as the original does (healthy, its sentence first), then the version, isolation, safe mode and sandbox dir") {
    Server server;
    grpc::ClientContext context;
    tools::HealthCheckResponse response;
    REQUIRE(server.stub().HealthCheck(&context, google::protobuf::Empty(), &response).ok());
    CHECK(response.status() == "healthy");
    CHECK(response.message().rfind("Tool executor service is operational; ", 0) == 0);
    CHECK(response.version() == pagi_exec::version);
    CHECK(response.message().find("isolation=cwd") != std::string::npos);
    CHECK(response.message().find("safe_mode=false") != std::string::npos);
    CHECK(response.message().find(server.sandbox_dir().string()) != std::string::npos);
  }

  TEST_CASE("the server listens on a unix socket when asked") {
    e2e::TempDir dir;
    const auto socket = "unix:" + (dir.path() / "tools.sock").string();
    Server server({.listen = socket});
    CHECK(server.address() == socket);
    CHECK(execute(server.stub(), "twin-aegis", "true").response.success());
  }

  TEST_CASE("a long command does not delay another request") {
    Server server;
    const auto pid_file = server.scratch() / "sleep.pid";
    std::atomic<bool> sleep_done{false};
    grpc::ClientContext sleep_context;
    std::thread sleeper_thread([&] {
      (void)execute(server.stub(), "twin-sentinel", "command_exec", {sleeper(pid_file, 5)}, 20s, &sleep_context);
      sleep_done = true;
    });
    REQUIRE(e2e::read_pid(pid_file));  // the sleep is running now
    const auto echo = execute(server.stub(), "twin-aegis", "echo", {"quick"});
    CHECK(echo.response.success());
    CHECK_FALSE(sleep_done.load());  // the echo came back while the sleep was still in flight
    sleep_context.TryCancel();
    sleeper_thread.join();
  }

  TEST_CASE("TOOLS_MAX_CONCURRENCY bounds the calls served at once; the rest get RESOURCE_EXHAUSTED") {
    Server server({.env = {{"TOOLS_MAX_CONCURRENCY", "1"}}});
    const auto pid_file = server.scratch() / "busy.pid";
    grpc::ClientContext sleep_context;
    std::thread sleeper_thread([&] {
      (void)execute(server.stub(), "twin-sentinel", "command_exec", {sleeper(pid_file, 30)}, 20s, &sleep_context);
    });
    REQUIRE(e2e::read_pid(pid_file));  // the one slot is taken
    const auto rejected = execute(server.stub(), "twin-aegis", "echo", {"no room"});
    CHECK(rejected.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    sleep_context.TryCancel();
    sleeper_thread.join();
    CHECK(e2e::eventually([&] { return execute(server.stub(), "twin-aegis", "echo", {"room"}).response.success(); }));
  }

  TEST_CASE("a client deadline kills the command's process tree") {
    Server server;
    const auto pid_file = server.scratch() / "deadline.pid";
    const auto call = execute(server.stub(), "twin-sentinel", "command_exec", {sleeper(pid_file, 30)}, 500ms);
    CHECK(call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    const auto pid = e2e::read_pid(pid_file);
    REQUIRE(pid);
    CHECK(e2e::eventually([&] { return e2e::process_gone(*pid); }));
  }

  TEST_CASE("a client cancel kills the command's process tree") {
    Server server;
    const auto pid_file = server.scratch() / "cancel.pid";
    grpc::ClientContext context;
    Call call;
    std::thread caller([&] {
      call = execute(server.stub(), "twin-sentinel", "command_exec", {sleeper(pid_file, 30)}, 20s, &context);
    });
    const auto pid = e2e::read_pid(pid_file);
    context.TryCancel();
    caller.join();
    CHECK(call.status.error_code() == grpc::StatusCode::CANCELLED);
    REQUIRE(pid);
    CHECK(e2e::eventually([&] { return e2e::process_gone(*pid); }));
  }

  TEST_CASE("SIGTERM stops the server with exit code 0 and kills running commands") {
    Server server({.env = {{"TOOLS_DRAIN_TIMEOUT_MS", "0"}}});  // no drain: killed at once
    const auto pid_file = server.scratch() / "term.pid";
    Call call;
    std::thread caller([&] {
      call = execute(server.stub(), "twin-sentinel", "command_exec", {sleeper(pid_file, 30)}, 60s);
    });
    const auto pid = e2e::read_pid(pid_file);
    REQUIRE(pid);
    REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
    const auto code = server.process().wait_exit(10s);
    caller.join();
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK_FALSE(call.status.ok());
    CHECK(e2e::eventually([&] { return e2e::process_gone(*pid); }));
  }

  TEST_CASE("SIGINT stops an idle server with exit code 0") {
    Server server;
    REQUIRE(::kill(server.process().pid(), SIGINT) == 0);
    const auto code = server.process().wait_exit(10s);
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK(server.process().stderr_text().find("SIGINT") != std::string::npos);
  }

  TEST_CASE("a bad configuration value stops start-up with exit code 2, naming the variable") {
    const std::vector<std::pair<std::string, std::string>> bad{
        {"TOOLS_GRPC_PORT", "abc"},     {"TOOLS_GRPC_PORT", "70000"}, {"TOOLS_EXEC_TIMEOUT_MS", "-5"},
        {"TOOLS_EXEC_TIMEOUT_MS", "abc"}, {"LOG_LEVEL", "loud"},       {"SAFE_MODE", "maybe"},
        {"TOOLS_ISOLATION", "vm"},       {"TOOLS_UID_POOL", "200000"},  {"TOOLS_UID_POOL", "60000:10000"},
        {"TOOLS_UID_POOL", "1:1"},
    };
    for (const auto& entry : bad) {
      const std::string& name = entry.first;
      const std::string& value = entry.second;
      CAPTURE(name);
      CAPTURE(value);
      const auto [code, err] = e2e::run_expecting_exit({{name, value}});
      REQUIRE(code);
      CHECK(*code == 2);
      CHECK(err.find(name) != std::string::npos);
      CHECK(err.find("'" + value + "'") != std::string::npos);
    }
  }

  TEST_CASE("a bad flag value stops start-up with exit code 2, naming the flag and its variable") {
    const auto [code, err] = e2e::run_expecting_exit({}, {"--timeout-ms", "soon"});
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(err.find("--timeout-ms") != std::string::npos);
    CHECK(err.find("TOOLS_EXEC_TIMEOUT_MS") != std::string::npos);
  }

  TEST_CASE("a port already in use stops start-up with exit code 1") {
    Server first;
    const auto [code, err] = e2e::run_expecting_exit({}, {}, first.address());
    REQUIRE(code);
    CHECK(*code == 1);
    CHECK(err.find("cannot listen on " + first.address()) != std::string::npos);
  }

  TEST_CASE("SAFE_MODE=true refuses the shell bridge") {
    Server server({.env = {{"SAFE_MODE", "TRUE"}}});
    const auto call = execute(server.stub(), "twin-sentinel", "command_exec", {"echo hi"});
    check_refusal(call);
    CHECK(call.response.policy_rule() == "safe_mode");
    grpc::ClientContext context;
    tools::HealthCheckResponse health;
    REQUIRE(server.stub().HealthCheck(&context, google::protobuf::Empty(), &health).ok());
    CHECK(health.message().find("safe_mode=true") != std::string::npos);
  }

  TEST_CASE("with working bwrap, commands run isolated and still reach their workspace") {
    const char* bwrap = std::getenv("PAGI_EXEC_BWRAP");
    if (bwrap == nullptr || *bwrap == '\0') {
      test_support::skip_case("bwrap is not installed");
      return;
    }
    check_isolated_server("bwrap", {{"TOOLS_ISOLATION", "bwrap"}, {"TOOLS_BWRAP_PATH", bwrap}});
  }

  TEST_CASE("with working native isolation, commands run isolated and still reach their workspace") {
    check_isolated_server("native", {{"TOOLS_ISOLATION", "native"}});
  }

  TEST_CASE("native limits are configurable and a run they end names the limit") {
    Server server({.env = {{"TOOLS_ISOLATION", "native"}, {"TOOLS_REQUIRE_ISOLATION", "true"},
                           {"TOOLS_MEMORY_LIMIT_MB", "64"}, {"TOOLS_MAX_PROCESSES", "16"}}});
    grpc::ClientContext context;
    tools::HealthCheckResponse health;
    REQUIRE(server.stub().HealthCheck(&context, google::protobuf::Empty(), &health).ok());
    CHECK(health.message().find("memory_limit_mb=64 max_processes=16") != std::string::npos);
    const auto bomb = execute(server.stub(), "twin-aegis", "command_exec",
                              {"/usr/bin/python3 -c 'b = bytearray(256 << 20); print(len(b))'"});
    CHECK_FALSE(bomb.response.success());
    CHECK(bomb.response.limit_hit() == "memory_limit_exceeded");
    CHECK(bomb.response.peak_memory_bytes() > 0);
    const auto fine = execute(server.stub(), "twin-aegis", "command_exec", {"echo ok"});
    CHECK(fine.response.success());
    CHECK(fine.response.limit_hit().empty());
  }

  TEST_CASE("bwrap requested but unusable: fall back to cwd and say degraded, or refuse to start") {
    const e2e::Env bogus{{"TOOLS_ISOLATION", ""},  // unset: the fixture pins cwd, which would contradict
                         {"TOOLS_USE_BWRAP", "true"}, {"TOOLS_BWRAP_PATH", "/nonexistent/pagi-e2e/bwrap"}};
    SUBCASE("fallback") {
      Server server({.env = bogus});
      grpc::ClientContext context;
      tools::HealthCheckResponse health;
      REQUIRE(server.stub().HealthCheck(&context, google::protobuf::Empty(), &health).ok());
      CHECK(health.status() == "degraded");
      CHECK(health.message().rfind("Tool executor service is operational but degraded (isolation bwrap requested, cwd in effect)", 0) == 0);
      CHECK(health.message().find("isolation=cwd") != std::string::npos);
      CHECK(health.message().find("bwrap") != std::string::npos);
      const auto call = execute(server.stub(), "twin-aegis", "echo", {"still works"});
      CHECK(call.response.success());
      CHECK(call.response.isolation() == "cwd");
      CHECK(server.process().stderr_text().find("WARN") != std::string::npos);
    }
    SUBCASE("required") {
      auto env = bogus;
      env["TOOLS_REQUIRE_ISOLATION"] = "true";
      const auto [code, err] = e2e::run_expecting_exit(env);
      REQUIRE(code);
      CHECK(*code == 2);
      CHECK(err.find("TOOLS_REQUIRE_ISOLATION") != std::string::npos);
    }
  }
}
