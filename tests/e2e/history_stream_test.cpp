// SPDX-License-Identifier: Apache-2.0
// E2E: ListExecutions / GetExecution over the history, and StreamExecution with real clients.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <thread>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;

namespace {

struct Streamed {
  grpc::Status status;
  std::vector<tools::ExecutionEvent> events;
  std::string out, err;
  std::string order;  // 's' started, 'o' stdout, 'e' stderr, 'f' finished
};

// `after_output`, when given, runs after each stdout or stderr event that ends a line (a
// handshake's release).
Streamed stream(tools::ToolExecutorService::Stub& stub, const tools::ExecutionRequest& request,
                std::chrono::milliseconds deadline = 30s, const std::function<void()>& after_output = {}) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  auto reader = stub.StreamExecution(&context, request);
  Streamed got;
  for (tools::ExecutionEvent event; reader->Read(&event);) {
    switch (event.event_case()) {
      case tools::ExecutionEvent::kStarted: got.order += 's'; break;
      case tools::ExecutionEvent::kStdout: got.order += 'o'; got.out += event.stdout().data(); break;
      case tools::ExecutionEvent::kStderr: got.order += 'e'; got.err += event.stderr().data(); break;
      case tools::ExecutionEvent::kFinished: got.order += 'f'; break;
      case tools::ExecutionEvent::EVENT_NOT_SET: break;
    }
    got.events.push_back(event);
    // Per whole line: a line that came in two events must not release the command twice.
    const bool line_ended = (event.has_stdout() && event.stdout().data().ends_with('\n')) ||
                            (event.has_stderr() && event.stderr().data().ends_with('\n'));
    if (after_output && line_ended) after_output();
  }
  got.status = reader->Finish();
  return got;
}

tools::ExecutionRequest shell_request(const std::string& twin, const std::string& line) {
  tools::ExecutionRequest request;
  request.set_command("command_exec");
  request.add_args(line);
  request.set_twin_id(twin);
  return request;
}

// Peak resident memory of a process, from /proc/<pid>/status (VmHWM), in KiB.
long peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_SUITE("history") {
  TEST_CASE("ListExecutions pages newest first with filters; GetExecution finds one or says NOT_FOUND") {
    Server server;
    auto& stub = server.stub();
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
      auto request = shell_request("twin-aegis", "echo run" + std::to_string(i));
      request.set_job_id(i % 2 == 0 ? "job-even" : "job-odd");
      grpc::ClientContext context;
      tools::ExecutionResponse response;
      REQUIRE(stub.RequestExecution(&context, request, &response).ok());
      ids.push_back(response.execution_id());
    }
    const auto refused = execute(stub, "twin-trace", "echo", {"no"});
    REQUIRE(refused.status.ok());

    grpc::ClientContext c1;
    tools::ListExecutionsRequest list;
    list.set_page_size(2);
    tools::ListExecutionsResponse page;
    REQUIRE(stub.ListExecutions(&c1, list, &page).ok());
    REQUIRE(page.executions_size() == 2);
    CHECK(page.executions(0).execution_id() == refused.response.execution_id());
    CHECK_FALSE(page.executions(0).allowed());
    CHECK(page.executions(1).execution_id() == ids[4]);
    REQUIRE_FALSE(page.next_page_token().empty());

    list.set_page_token(page.next_page_token());
    grpc::ClientContext c2;
    tools::ListExecutionsResponse next;
    REQUIRE(stub.ListExecutions(&c2, list, &next).ok());
    CHECK(next.executions(0).execution_id() == ids[3]);

    tools::ListExecutionsRequest by_job;
    by_job.set_job_id("job-even");
    by_job.set_outcome("succeeded");
    grpc::ClientContext c3;
    tools::ListExecutionsResponse evens;
    REQUIRE(stub.ListExecutions(&c3, by_job, &evens).ok());
    CHECK(evens.executions_size() == 3);
    CHECK(evens.next_page_token().empty());

    tools::ListExecutionsRequest bad;
    bad.set_outcome("exploded");
    grpc::ClientContext c4;
    tools::ListExecutionsResponse ignored;
    CHECK(stub.ListExecutions(&c4, bad, &ignored).error_code() == grpc::StatusCode::INVALID_ARGUMENT);

    grpc::ClientContext c5;
    tools::GetExecutionRequest get;
    get.set_execution_id(ids[2]);
    tools::ExecutionRecord record;
    REQUIRE(stub.GetExecution(&c5, get, &record).ok());
    CHECK(record.twin_id() == "twin-aegis");
    CHECK(record.command() == "command_exec");
    CHECK(record.args(0) == "echo run2");
    CHECK(record.allowed());
    CHECK(record.exit_code() == 0);
    CHECK(record.stdout_logs_size() == 1);
    CHECK(record.stdout_logs(0) == "run2");
    CHECK_FALSE(record.started_at().empty());

    grpc::ClientContext c6;
    get.set_execution_id("00000000-0000-4000-8000-000000000000");
    CHECK(stub.GetExecution(&c6, get, &record).error_code() == grpc::StatusCode::NOT_FOUND);
  }
}

TEST_SUITE("streaming") {
  TEST_CASE("events come as started, output chunks in order, finished") {
    Server server({.env = {{"TOOLS_EXEC_TIMEOUT_MS", "120000"}}});  // a loaded machine: no time limit cuts the handshake
    // Each line waits until the client has had the one before: separate events, in order.
    REQUIRE(execute(server.stub(), "twin-aegis", "command_exec", {"mkfifo \"$PAGI_WORKSPACE/ack\""}).response.success());
    const auto ack = server.sandbox_dir() / "twin-aegis" / "ack";
    const auto got = stream(server.stub(),
                            // `until read`: a read that met the end of the previous release's write
                            // (its writer not yet closed) got no line, and waits for the next.
                            shell_request("twin-aegis", "w() { until read a < \"$PAGI_WORKSPACE/ack\"; do :; done; }; "
                                                        "for i in 1 2 3; do echo out$i; w; echo err$i >&2; w; done; exit 3"),
                            180s, [&] { CHECK(test_support::release(ack)); });
    REQUIRE(got.status.ok());
    CHECK(got.order == "soeoeoef");
    CHECK(got.out == "out1\nout2\nout3\n");
    CHECK(got.err == "err1\nerr2\nerr3\n");
    const auto& started = got.events.front().started();
    const auto& finished = got.events.back().finished();
    CHECK(started.execution_id() == finished.execution_id());
    CHECK(started.limits().timeout_ms() > 0);
    CHECK(finished.allowed());
    CHECK_FALSE(finished.success());
    CHECK(finished.exit_code() == 3);
  }

  TEST_CASE("a refusal is one finished event carrying it") {
    Server server;
    const auto got = stream(server.stub(), shell_request("twin-trace", "echo hi"));
    REQUIRE(got.status.ok());
    CHECK(got.order == "f");
    const auto& finished = got.events.front().finished();
    CHECK_FALSE(finished.allowed());
    CHECK(finished.exit_code() == 1);
    CHECK(finished.reason().find("twin-trace") != std::string::npos);
  }

  TEST_CASE("a client deadline mid-run ends the stream and kills the whole tree") {
    Server server;
    const auto pidfile = server.scratch() / "pid";
    const auto got = stream(server.stub(),
                            shell_request("twin-aegis", "(setsid sleep 600 & echo $! > " + pidfile.string() +
                                                            ") ; echo started; sleep 600"),
                            1500ms);
    CHECK(got.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(got.out.find("started") != std::string::npos);
    std::string text;
    for (int i = 0; i < 100 && text.empty(); ++i) {
      text = test_support::read_file(pidfile);
      std::this_thread::sleep_for(10ms);
    }
    REQUIRE_FALSE(text.empty());
    CHECK(test_support::wait_gone(std::stoi(text)));
  }

  TEST_CASE("1 GiB streamed to a slow client keeps the server's memory bounded") {
    Server server({.env = {{"TOOLS_EXEC_TIMEOUT_MS", "120000"}}});
    const long before = peak_rss_kib(server.process().pid());
    grpc::ClientContext context;
    auto reader = server.stub().StreamExecution(&context, shell_request("twin-aegis", "head -c 1073741824 /dev/zero"));
    std::uint64_t received = 0;
    int messages = 0;
    for (tools::ExecutionEvent event; reader->Read(&event);) {
      if (event.has_stdout()) received += event.stdout().data().size();
      if (++messages % 256 == 0) std::this_thread::sleep_for(2ms);  // a slow reader
    }
    REQUIRE(reader->Finish().ok());
    CHECK(received == 1073741824ULL);
    const long after = peak_rss_kib(server.process().pid());
    MESSAGE("server peak RSS before " << before << " KiB, after streaming 1 GiB " << after << " KiB");
    CHECK(after - before < 64 * 1024);  // KiB: 1 GiB went through, never into the server's memory
  }
}
