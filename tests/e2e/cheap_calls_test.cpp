// SPDX-License-Identifier: Apache-2.0
// E2E: cheap calls are never refused for want of a server thread (issue 11). With every execution
// slot held by a running command, 144 HealthChecks, refusals and policy checks at once are all answered OK; the
// held executions are then released and end normally.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <latch>
#include <list>
#include <thread>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

constexpr int slots = 16;          // TOOLS_MAX_CONCURRENCY: the old thread quota was this + 17
constexpr int health_calls = 64;
constexpr int refused_calls = 48;
constexpr int refused_streams = 16;
constexpr int policy_checks = 16;

// Executions that hold every slot: each touches its marker once it runs (the handshake), then
// waits until the test creates the release file.
class HeldRuns {
 public:
  explicit HeldRuns(Server& server) : server_(server), release_(server.scratch() / "release") {}
  HeldRuns(const HeldRuns&) = delete;
  HeldRuns& operator=(const HeldRuns&) = delete;
  ~HeldRuns() { release(); }

  void start(int count) {
    for (int i = 0; i < count; ++i) {
      const auto marker = server_.scratch() / ("running-" + std::to_string(i));
      auto& run = runs_.emplace_back();
      run.thread = std::thread([this, &run, marker] {
        const auto line =
            "touch " + marker.string() + " && while [ ! -e " + release_.string() + " ]; do sleep 0.05; done";
        run.call = execute(server_.stub(), "twin-aegis", "command_exec", {line}, 600s);
      });
      markers_.push_back(marker);
    }
    for (const auto& marker : markers_) {
      REQUIRE(e2e::eventually([&] { return std::filesystem::exists(marker); }, 60s));
    }
  }

  // Lets every run end and waits for their answers.
  void release() {
    if (!std::filesystem::exists(release_)) std::ofstream(release_) << "go\n";
    for (auto& run : runs_) {
      if (run.thread.joinable()) run.thread.join();
    }
  }

  struct Run {
    std::thread thread;
    e2e::Call call;
  };
  [[nodiscard]] const std::list<Run>& all() const { return runs_; }

 private:
  Server& server_;
  std::filesystem::path release_;
  std::list<Run> runs_;  // a list: a running thread's Run never moves
  std::vector<std::filesystem::path> markers_;
};

grpc::Status health_check(Server& server) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  tools::HealthCheckResponse response;
  return server.stub().HealthCheck(&context, google::protobuf::Empty(), &response);
}

bool policy_check_ok(Server& server) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  tools::ExecutionRequest request;
  request.set_twin_id("twin-aegis");
  request.set_command("command_exec");
  request.add_args("echo dry");
  tools::PolicyDecision decision;
  return server.stub().CheckPolicy(&context, request, &decision).ok() && decision.allowed();
}

// A refused StreamExecution: OK with one `finished` event that says it did not run.
bool refused_stream_ok(Server& server) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  tools::ExecutionRequest request;
  request.set_twin_id("twin-aegis");
  request.set_command("rm");
  request.add_args("-rf");
  request.add_args("/");
  auto reader = server.stub().StreamExecution(&context, request);
  tools::ExecutionEvent event;
  int finished = 0;
  bool refused = false;
  while (reader->Read(&event)) {
    if (event.has_finished()) {
      ++finished;
      refused = !event.finished().success();
    }
  }
  return reader->Finish().ok() && finished == 1 && refused;
}

// Holds every slot, fires the cheap calls at once, checks each answer, releases the runs.
void check_cheap_calls_while_full(e2e::Env env) {
  env.insert({{"TOOLS_MAX_CONCURRENCY", std::to_string(slots)},
              {"TOOLS_MAX_CONCURRENCY_PER_TWIN", std::to_string(slots)},
              {"TOOLS_MEMORY_BUDGET_MB", "0"},
              {"TOOLS_EXEC_TIMEOUT_MS", "600000"}});
  Server server({.env = env});
  HeldRuns held(server);
  held.start(slots);
  CHECK(e2e::health(server).message().find("executions=" + std::to_string(slots) + "/" + std::to_string(slots)) !=
        std::string::npos);
  // Admission still answers the execution beyond the slots, at once.
  const auto beyond = execute(server.stub(), "twin-aegis", "echo", {"one more"});
  CHECK(beyond.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(beyond.status.error_message().find("concurrency limit reached") != std::string::npos);

  // Every caller starts at once (the latch), so the calls are in flight together.
  std::latch go(health_calls + refused_calls + refused_streams + policy_checks);
  std::atomic<int> health_ok{0};
  std::atomic<int> refused_ok{0};
  std::atomic<int> streams_ok{0};
  std::atomic<int> checks_ok{0};
  std::atomic<int> exhausted{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < health_calls; ++i) {
    callers.emplace_back([&] {
      go.arrive_and_wait();
      const auto status = health_check(server);
      if (status.ok()) ++health_ok;
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++exhausted;
    });
  }
  for (int i = 0; i < refused_calls; ++i) {
    callers.emplace_back([&] {
      go.arrive_and_wait();
      const auto refused = execute(server.stub(), "twin-aegis", "rm", {"-rf", "/"}, 60s);
      if (refused.status.ok() && !refused.response.success() &&
          refused.response.stderr_logs(0).rfind("Policy violation: ", 0) == 0) {
        ++refused_ok;
      }
      if (refused.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++exhausted;
    });
  }
  for (int i = 0; i < refused_streams; ++i) {
    callers.emplace_back([&] {
      go.arrive_and_wait();
      if (refused_stream_ok(server)) ++streams_ok;
    });
  }
  for (int i = 0; i < policy_checks; ++i) {
    callers.emplace_back([&] {
      go.arrive_and_wait();
      if (policy_check_ok(server)) ++checks_ok;
    });
  }
  for (auto& caller : callers) caller.join();
  CHECK(exhausted.load() == 0);
  CHECK(health_ok.load() == health_calls);
  CHECK(refused_ok.load() == refused_calls);
  CHECK(streams_ok.load() == refused_streams);
  CHECK(checks_ok.load() == policy_checks);

  // The held runs were never disturbed: released, each ends as its command did.
  held.release();
  for (const auto& run : held.all()) {
    CAPTURE(run.call.status.error_message());
    REQUIRE(run.call.status.ok());
    CHECK(run.call.response.success());
    CHECK(run.call.response.exit_code() == 0);
  }
  CHECK(e2e::eventually([&] { return e2e::health(server).message().find("executions=0/") != std::string::npos; }));
}

}  // namespace

TEST_SUITE("cheap_calls") {
  TEST_CASE("every slot running: 144 HealthChecks, refusals and policy checks at once are all answered OK") {
    check_cheap_calls_while_full({});
  }

  TEST_CASE("the same with an audit log synced at every record (the refusals wait for the disk off grpc's threads)") {
    e2e::TempDir dir;
    check_cheap_calls_while_full(
        {{"TOOLS_AUDIT_LOG", (dir.path() / "audit.jsonl").string()}, {"TOOLS_AUDIT_SYNC", "every"}});
  }
}
