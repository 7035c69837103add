// SPDX-License-Identifier: Apache-2.0
// E2E: the graceful drain with a run in flight. The run touches a marker once it runs, then waits
// for a release file the test creates; every ordering below follows from those two files and from
// what the server answers, never from sleeping.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "server_fixture.hpp"
#include "standard_clients.hpp"

namespace {

using e2e::Call;
using e2e::Server;
using grpc::health::v1::HealthCheckResponse;
using namespace std::chrono_literals;

// One RequestExecution held in flight on its own thread until release().
class HeldRun {
 public:
  explicit HeldRun(Server& server)
      : marker_(server.scratch() / "running"), release_(server.scratch() / "release"),
        thread_([this, &server] {
          // The shell's pid is the marker's content: the test can see the run's process go.
          const auto line = "echo $$ > " + marker_.string() + " && while [ ! -e " + release_.string() +
                            " ]; do sleep 0.05; done; echo released";
          call_ = e2e::execute(server.stub(), "twin-aegis", "command_exec", {line}, 600s);
        }) {}
  ~HeldRun() {
    release();
    if (thread_.joinable()) thread_.join();
  }
  HeldRun(const HeldRun&) = delete;
  HeldRun& operator=(const HeldRun&) = delete;

  // The pid of the run's shell, once it runs.
  std::optional<pid_t> wait_running() { return e2e::read_pid(marker_); }
  void release() {
    if (!std::filesystem::exists(release_)) std::ofstream(release_) << "go\n";
  }
  // The answer, once the call ended.
  const Call& answer() {
    thread_.join();
    return call_;
  }

 private:
  std::filesystem::path marker_;
  std::filesystem::path release_;
  Call call_;
  std::thread thread_;  // last: starts after the members it uses
};

bool not_serving(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  return e2e::eventually([&] {
    const auto answer = e2e::check_health(channel, service);
    return answer.status.ok() && answer.serving == HealthCheckResponse::NOT_SERVING;
  }, 30s);
}

grpc::Status stream_status(Server& server) {
  tools::ExecutionRequest request;
  request.set_twin_id("twin-aegis");
  request.set_command("command_exec");
  request.add_args("echo too late");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader = server.stub().StreamExecution(&context, request);
  tools::ExecutionEvent event;
  while (reader->Read(&event)) {
  }
  return reader->Finish();
}

// SIGTERM, then the drain is seen: health NOT_SERVING under both names.
void start_drain(Server& server, const std::shared_ptr<grpc::Channel>& channel) {
  REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
  REQUIRE(not_serving(channel, ""));
  CHECK(not_serving(channel, e2e::tools_service));
}

}  // namespace

TEST_SUITE("drain") {
  TEST_CASE("SIGTERM with a run in flight: NOT_SERVING, new executions UNAVAILABLE, the run finishes normally, exit 0") {
    Server server({.env = {{"TOOLS_DRAIN_TIMEOUT_MS", "600000"}}});
    const auto channel = e2e::channel_to(server.address());
    HeldRun run(server);
    REQUIRE(run.wait_running());
    start_drain(server, channel);

    const auto refused = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"echo too late"});
    CHECK(refused.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(refused.status.error_message().find("draining") != std::string::npos);
    const auto refused_stream = stream_status(server);
    CHECK(refused_stream.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(refused_stream.error_message().find("draining") != std::string::npos);
    // What does not execute keeps answering while the run drains.
    CHECK(e2e::health(server).status() == "healthy");
    tools::ExecutionRequest check;
    check.set_twin_id("twin-aegis");
    check.set_command("command_exec");
    check.add_args("echo judged");
    grpc::ClientContext check_context;
    tools::PolicyDecision decision;
    REQUIRE(server.stub().CheckPolicy(&check_context, check, &decision).ok());
    CHECK(decision.allowed());
    grpc::ClientContext list_context;
    tools::ListExecutionsResponse page;
    CHECK(server.stub().ListExecutions(&list_context, tools::ListExecutionsRequest(), &page).ok());
    CHECK_FALSE(server.process().wait_exit(0ms));  // the held run keeps the server up

    run.release();
    const auto& answer = run.answer();
    REQUIRE(answer.status.ok());
    CHECK(answer.response.success());
    CHECK(answer.response.exit_code() == 0);
    REQUIRE(answer.response.stdout_logs_size() == 1);
    CHECK(answer.response.stdout_logs(0) == "released");
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
    const auto log = server.process().stderr_text();
    CHECK(log.find("draining: 1 execution in flight") != std::string::npos);
    CHECK(log.find("drain ended: every execution in flight finished (1)") != std::string::npos);
  }

  TEST_CASE("a StreamExecution in flight streams to its end during the drain") {
    Server server({.env = {{"TOOLS_DRAIN_TIMEOUT_MS", "600000"}}});
    const auto channel = e2e::channel_to(server.address());
    const auto marker = server.scratch() / "streaming";
    const auto release = server.scratch() / "release";
    tools::ExecutionRequest request;
    request.set_twin_id("twin-aegis");
    request.set_command("command_exec");
    request.add_args("echo before; touch " + marker.string() + "; while [ ! -e " + release.string() +
                     " ]; do sleep 0.05; done; echo after");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 600s);
    auto reader = server.stub().StreamExecution(&context, request);
    REQUIRE(e2e::eventually([&] { return std::filesystem::exists(marker); }, 60s));
    start_drain(server, channel);
    std::ofstream(release) << "go\n";
    std::string out;
    tools::ExecutionEvent event;
    bool finished_ok = false;
    while (reader->Read(&event)) {
      if (event.has_stdout()) out += event.stdout().data();
      if (event.has_finished()) finished_ok = event.finished().success();
    }
    REQUIRE(reader->Finish().ok());
    CHECK(out == "before\nafter\n");
    CHECK(finished_ok);
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
  }

  TEST_CASE("a second SIGTERM during the drain kills the run at once; it is answered as killed and the server exits") {
    Server server({.env = {{"TOOLS_DRAIN_TIMEOUT_MS", "600000"}}});
    const auto channel = e2e::channel_to(server.address());
    HeldRun run(server);
    const auto pid = run.wait_running();
    REQUIRE(pid);
    start_drain(server, channel);
    REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
    const auto& answer = run.answer();  // never released: only the kill ends it
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(answer.status.error_message().find("killed") != std::string::npos);
    CHECK(e2e::eventually([&] { return e2e::process_gone(*pid); }));
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK(server.process().stderr_text().find("drain ended: second signal, 1 execution killed") != std::string::npos);
  }

  TEST_CASE("TOOLS_DRAIN_TIMEOUT_MS: a run that does not finish in time is killed and answered") {
    Server server({.env = {{"TOOLS_DRAIN_TIMEOUT_MS", "300"}}});
    HeldRun run(server);
    const auto pid = run.wait_running();
    REQUIRE(pid);
    REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
    const auto& answer = run.answer();  // never released: only the drain's end kills it
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(answer.status.error_message().find("killed") != std::string::npos);
    CHECK(e2e::eventually([&] { return e2e::process_gone(*pid); }));
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK(server.process().stderr_text().find("drain ended: timed out after 300 ms, 1 execution killed") !=
          std::string::npos);
  }

  TEST_CASE("SIGINT drains like SIGTERM: an idle server stops at once, exit 0") {
    Server server;
    REQUIRE(::kill(server.process().pid(), SIGINT) == 0);
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
    CHECK(server.process().stderr_text().find("drain ended: every execution in flight finished (0)") != std::string::npos);
  }
}
