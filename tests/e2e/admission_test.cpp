// SPDX-License-Identifier: Apache-2.0
// E2E: one twin flooding the server cannot starve the others (issue 8, item 7). A twin gets at
// most its share of execution slots, all runs together stay within the memory budget, and the
// cheap calls (HealthCheck, CheckPolicy, history, refusals) are served while every slot is taken.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <list>
#include <thread>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

// Executions that run until cancelled; each touches a file once it runs (the handshake).
class Flood {
 public:
  explicit Flood(Server& server) : server_(server) {}
  Flood(const Flood&) = delete;
  Flood& operator=(const Flood&) = delete;
  ~Flood() { stop(); }

  // Starts one long run of `twin` and waits until it is running.
  void start(const std::string& twin) {
    const auto marker = server_.scratch() / ("running-" + std::to_string(runs_.size()));
    auto& run = runs_.emplace_back();
    run.thread = std::thread([this, &run, twin, marker] {
      run.call = execute(server_.stub(), twin, "command_exec", {"touch " + marker.string() + " && sleep 600"}, 600s,
                         &run.context);
    });
    REQUIRE(e2e::eventually([&] { return std::filesystem::exists(marker); }, 30s));
  }

  // Cancels every run and waits for the answers (each run's slot is free once it has answered).
  void stop() {
    for (auto& run : runs_) run.context.TryCancel();
    for (auto& run : runs_) {
      if (run.thread.joinable()) run.thread.join();
    }
  }

 private:
  struct Run {
    grpc::ClientContext context;
    e2e::Call call;
    std::thread thread;
  };
  Server& server_;
  std::list<Run> runs_;  // a list: a running thread's Run never moves
};

void check_exhausted(const e2e::Call& call, const std::string& limit) {
  CAPTURE(call.status.error_message());
  CHECK(call.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(call.status.error_message().find(limit) != std::string::npos);
}

// Everything that must be served while executions fill the slots.
void check_cheap_calls_served(Server& server) {
  CHECK(health(server).status() == "healthy");
  {
    grpc::ClientContext context;
    tools::ExecutionRequest request;
    request.set_twin_id("twin-aegis");
    request.set_command("command_exec");
    request.add_args("echo dry");
    tools::PolicyDecision decision;
    CHECK(server.stub().CheckPolicy(&context, request, &decision).ok());
    CHECK(decision.allowed());
  }
  {
    grpc::ClientContext context;
    tools::ListExecutionsResponse page;
    CHECK(server.stub().ListExecutions(&context, tools::ListExecutionsRequest(), &page).ok());
  }
  const auto refused = execute(server.stub(), "twin-aegis", "/bin/rm", {"-rf", "/"});
  CHECK(refused.status.ok());  // a refusal needs no slot
  CHECK_FALSE(refused.response.success());
  CHECK(refused.response.stderr_logs(0).rfind("Policy violation: ", 0) == 0);
  // More cheap calls at once than there are execution slots.
  std::vector<std::thread> checks;
  std::atomic<int> served{0};
  for (int i = 0; i < 8; ++i) {
    checks.emplace_back([&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 10s);
      tools::HealthCheckResponse response;
      if (server.stub().HealthCheck(&context, google::protobuf::Empty(), &response).ok()) ++served;
    });
  }
  for (auto& t : checks) t.join();
  CHECK(served == 8);
}

}  // namespace

TEST_SUITE("admission") {
  TEST_CASE("a flooding twin gets its share of slots; other twins and cheap calls are still served") {
    Server server({.env = {{"TOOLS_MAX_CONCURRENCY", "3"}, {"TOOLS_MAX_CONCURRENCY_PER_TWIN", "2"},
                           {"TOOLS_EXEC_TIMEOUT_MS", "600000"}}});
    Flood flood(server);
    // twin-aegis floods: two runs fill its share, the third is refused at once, naming the limit.
    flood.start("twin-aegis");
    flood.start("twin-aegis");
    check_exhausted(execute(server.stub(), "twin-aegis", "echo", {"one more"}), "per-twin concurrency limit");
    check_exhausted(execute(server.stub(), "twin-aegis", "command_exec", {"echo again"}), "twin 'twin-aegis'");
    {  // streaming is an execution too
      grpc::ClientContext context;
      tools::ExecutionRequest request;
      request.set_twin_id("twin-aegis");
      request.set_command("echo");
      auto reader = server.stub().StreamExecution(&context, request);
      tools::ExecutionEvent event;
      while (reader->Read(&event)) {
      }
      const auto status = reader->Finish();
      CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    }
    // ... while another twin is served.
    const auto other = execute(server.stub(), "twin-sentinel", "command_exec", {"echo served"});
    REQUIRE(other.status.ok());
    CHECK(other.response.success());
    CHECK(other.response.stdout_logs(0) == "served");
    check_cheap_calls_served(server);

    // Every slot taken (2 + 1 of 3): new executions are refused at once, cheap calls still served.
    flood.start("twin-sentinel");
    CHECK(health(server).message().find("executions=3/3 per_twin_limit=2") != std::string::npos);
    check_exhausted(execute(server.stub(), "twin-sentinel", "command_exec", {"echo full"}), "concurrency limit reached");
    check_cheap_calls_served(server);

    // The slots come back when the runs end (the server answers the cancelled calls a moment
    // after the clients gave up on them: wait until it counts no run).
    flood.stop();
    CHECK(e2e::eventually([&] { return health(server).message().find("executions=0/3") != std::string::npos; }));
    const auto after = execute(server.stub(), "twin-aegis", "echo", {"back"});
    REQUIRE(after.status.ok());
    CHECK(after.response.success());
    CHECK(server.process().stderr_text().find("error=resource_exhausted") != std::string::npos);  // logged
  }

  TEST_CASE("running executions stay within the memory budget, counted by their memory limits") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
[twins.twin-sentinel]
allow = ["command_exec"]
[twins.twin-sentinel.limits]
memory_mb = 16
)";
    Server server({.env = {{"TOOLS_MEMORY_LIMIT_MB", "40"}, {"TOOLS_MEMORY_BUDGET_MB", "100"},
                           {"TOOLS_POLICY_FILE", policy.string()}, {"TOOLS_EXEC_TIMEOUT_MS", "600000"}}});
    Flood flood(server);
    flood.start("twin-aegis");
    flood.start("twin-aegis");  // 80 of 100 MiB reserved
    CHECK(health(server).message().find("memory_reserved_mb=80/100") != std::string::npos);
    check_exhausted(execute(server.stub(), "twin-aegis", "echo", {"40 more"}), "memory budget reached");
    // A twin whose policy limit is 16 MiB still fits.
    const auto small = execute(server.stub(), "twin-sentinel", "command_exec", {"echo fits"});
    REQUIRE(small.status.ok());
    CHECK(small.response.success());
    check_cheap_calls_served(server);
    flood.stop();
    CHECK(e2e::eventually([&] { return health(server).message().find("memory_reserved_mb=0/100") != std::string::npos; }));
    const auto after = execute(server.stub(), "twin-aegis", "echo", {"back"});
    REQUIRE(after.status.ok());
    CHECK(after.response.success());
  }

  TEST_CASE("a policy's max_running lowers a twin's share, and never raises it") {
    e2e::TempDir dir;
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot"]
[twins.twin-aegis]
allow = ["*"]
[twins.twin-aegis.limits]
max_running = 1
[twins.twin-sentinel]
allow = ["command_exec"]
[twins.twin-sentinel.limits]
max_running = 100
)";
    Server server({.env = {{"TOOLS_MAX_CONCURRENCY", "8"}, {"TOOLS_MAX_CONCURRENCY_PER_TWIN", "2"},
                           {"TOOLS_POLICY_FILE", policy.string()}, {"TOOLS_EXEC_TIMEOUT_MS", "600000"}}});
    Flood flood(server);
    flood.start("twin-aegis");
    check_exhausted(execute(server.stub(), "twin-aegis", "echo", {"second"}), "twin 'twin-aegis' already runs 1 of 1");
    flood.start("twin-sentinel");
    flood.start("twin-sentinel");
    check_exhausted(execute(server.stub(), "twin-sentinel", "command_exec", {"echo third"}),
                    "twin 'twin-sentinel' already runs 2 of 2");
  }

  TEST_CASE("limits that cannot work together stop start-up with exit code 2") {
    const std::vector<std::pair<e2e::Env, std::string>> bad{
        {{{"TOOLS_MEMORY_BUDGET_MB", "100"}, {"TOOLS_MEMORY_LIMIT_MB", "512"}}, "TOOLS_MEMORY_BUDGET_MB"},
        {{{"TOOLS_MAX_CONCURRENCY", "4"}, {"TOOLS_MAX_CONCURRENCY_PER_TWIN", "8"}}, "TOOLS_MAX_CONCURRENCY_PER_TWIN"},
        {{{"TOOLS_MAX_CONCURRENCY_PER_TWIN", "0"}}, "TOOLS_MAX_CONCURRENCY_PER_TWIN"},
    };
    for (const auto& [env, name] : bad) {
      CAPTURE(name);
      const auto [code, err] = e2e::run_expecting_exit(env);
      REQUIRE(code);
      CHECK(*code == 2);
      CHECK(err.find(name) != std::string::npos);
    }
  }
}
