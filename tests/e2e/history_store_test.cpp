// SPDX-License-Identifier: Apache-2.0
// E2E: a server keeping its history in SQLite answers ListExecutions and GetExecution for calls
// made before it was killed and started again on the same file; the node id is in each record;
// without TOOLS_HISTORY the file is beside SANDBOX_DIR, never inside it.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using e2e::ServerOptions;
using namespace std::chrono_literals;

namespace {

tools::ExecutionRequest shell_request(const std::string& twin, const std::string& line) {
  tools::ExecutionRequest request;
  request.set_command("command_exec");
  request.add_args(line);
  request.set_twin_id(twin);
  return request;
}

std::vector<std::string> listed_ids(tools::ToolExecutorService::Stub& stub) {
  std::vector<std::string> ids;
  tools::ListExecutionsRequest list;
  list.set_page_size(2);  // several pages: the tokens work across the restart too
  for (int pages = 0; pages < 100; ++pages) {
    grpc::ClientContext context;
    tools::ListExecutionsResponse page;
    const auto status = stub.ListExecutions(&context, list, &page);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    for (const auto& record : page.executions()) ids.push_back(record.execution_id());
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  return ids;
}

}  // namespace

TEST_SUITE("history store e2e") {
  TEST_CASE("sqlite history survives a kill -9 and a restart on the same file") {
    e2e::TempDir state;
    const auto db = state.path() / "state" / "history.db";
    const ServerOptions options{.env = {{"TOOLS_HISTORY", "sqlite:" + db.string()}, {"TOOLS_NODE_ID", "node-a"}}};
    std::vector<std::string> newest_first;
    {
      Server server(options);
      for (int i = 0; i < 4; ++i) {
        grpc::ClientContext context;
        tools::ExecutionResponse response;
        REQUIRE(server.stub().RequestExecution(&context, shell_request("twin-aegis", "echo run" + std::to_string(i)),
                                               &response).ok());
        newest_first.insert(newest_first.begin(), response.execution_id());
      }
      const auto refused = execute(server.stub(), "twin-trace", "echo", {"no"});
      REQUIRE(refused.status.ok());
      newest_first.insert(newest_first.begin(), refused.response.execution_id());
      CHECK(listed_ids(server.stub()) == newest_first);
      ::kill(server.process().pid(), SIGKILL);  // no orderly shutdown: what was answered is on disk
      CHECK(server.process().wait_exit(10s) == 128 + SIGKILL);
    }
    Server again(options);
    CHECK(listed_ids(again.stub()) == newest_first);
    grpc::ClientContext context;
    tools::GetExecutionRequest get;
    get.set_execution_id(newest_first.back());
    tools::ExecutionRecord record;
    REQUIRE(again.stub().GetExecution(&context, get, &record).ok());
    CHECK(record.execution_id() == newest_first.back());
    CHECK(record.node() == "node-a");
    CHECK(record.allowed());
    REQUIRE(record.stdout_logs_size() == 1);
    CHECK(record.stdout_logs(0) == "run0");
    // New calls go on after the old ones.
    const auto later = execute(again.stub(), "twin-trace", "echo", {"later"});
    REQUIRE(later.status.ok());
    CHECK(listed_ids(again.stub()).front() == later.response.execution_id());
  }

  TEST_CASE("refusals answered by many clients at once are each on disk when answered: a kill -9 mid-flood loses none") {
    e2e::TempDir state;
    const ServerOptions options{.env = {{"TOOLS_HISTORY", "sqlite:" + (state.path() / "history.db").string()}}};
    constexpr std::size_t clients = 16, kill_after = 400;
    std::vector<std::vector<std::string>> answered(clients);
    {
      Server server(options);
      std::mutex mutex;
      std::condition_variable progressed;
      std::size_t count = 0;
      std::vector<std::thread> threads;
      for (std::size_t c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
          // Until the server is killed under it: the calls in flight then get no answer.
          for (;;) {
            const auto refused = execute(server.stub(), "twin-trace", "echo", {"no"});
            if (!refused.status.ok() || refused.response.exit_code() != 1) return;
            answered[c].push_back(refused.response.execution_id());
            const std::lock_guard lock(mutex);
            ++count;
            progressed.notify_all();
          }
        });
      }
      {
        std::unique_lock lock(mutex);
        REQUIRE(progressed.wait_for(lock, 60s, [&] { return count >= kill_after; }));
      }
      ::kill(server.process().pid(), SIGKILL);  // with calls in flight and records being written
      CHECK(server.process().wait_exit(10s) == 128 + SIGKILL);
      for (auto& thread : threads) thread.join();
    }
    Server again(options);
    std::set<std::string> kept;
    tools::ListExecutionsRequest list;
    list.set_page_size(100);
    for (int pages = 0; pages < 100; ++pages) {
      grpc::ClientContext context;
      tools::ListExecutionsResponse page;
      const auto status = again.stub().ListExecutions(&context, list, &page);
      REQUIRE_MESSAGE(status.ok(), status.error_message());
      for (const auto& record : page.executions()) kept.insert(record.execution_id());
      if (page.next_page_token().empty()) break;
      list.set_page_token(page.next_page_token());
    }
    std::size_t lost = 0, total = 0;
    for (const auto& ids : answered) {
      for (const auto& id : ids) {
        ++total;
        if (kept.count(id) == 0) ++lost;
      }
    }
    CHECK(total >= kill_after);
    CHECK(lost == 0);
    CHECK(kept.size() >= total);  // records of calls whose answers were on their way may be there too
  }

  TEST_CASE("without TOOLS_HISTORY the server keeps its history in <SANDBOX_DIR>.state/history.db, owner-only") {
    e2e::TempDir dir;
    const auto sandbox = dir.path() / "sandbox";
    const ServerOptions options{.env = {{"SANDBOX_DIR", sandbox.string()}}};
    std::string id;
    {
      Server server(options);
      const auto call = execute(server.stub(), "twin-aegis", "echo", {"kept"});
      REQUIRE(call.status.ok());
      id = call.response.execution_id();
    }
    const auto state = dir.path() / "sandbox.state";
    REQUIRE(std::filesystem::exists(state / "history.db"));
    CHECK((std::filesystem::status(state).permissions() & std::filesystem::perms::all) ==
          std::filesystem::perms::owner_all);
    Server again(options);
    CHECK(listed_ids(again.stub()) == std::vector<std::string>{id});
  }

  TEST_CASE("a history database inside SANDBOX_DIR is refused, whichever setting put it there") {
    e2e::TempDir dir;
    const auto sandbox = dir.path() / "sandbox";
    const auto [code, text] = e2e::run_expecting_exit(
        {{"SANDBOX_DIR", sandbox.string()}, {"TOOLS_HISTORY", "sqlite:" + (sandbox / "twin" / "h.db").string()}});
    CHECK(code == 2);
    CHECK(text.find("TOOLS_HISTORY / --history") != std::string::npos);
    CHECK(text.find("inside SANDBOX_DIR") != std::string::npos);
    const auto [state_code, state_text] =
        e2e::run_expecting_exit({{"SANDBOX_DIR", sandbox.string()}, {"TOOLS_STATE_DIR", (sandbox / "state").string()}});
    CHECK(state_code == 2);
    CHECK(state_text.find("TOOLS_STATE_DIR / --state-dir") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(sandbox / "state"));
  }

  TEST_CASE("an unopenable history file stops the start with the setting named") {
    e2e::TempDir dir;
    const auto [code, stderr_text] = e2e::run_expecting_exit({{"TOOLS_HISTORY", "sqlite:" + dir.path().string()}});
    CHECK(code.has_value());
    CHECK(code != 0);
    CHECK(stderr_text.find("TOOLS_HISTORY") != std::string::npos);
    const auto [bad_code, bad_text] = e2e::run_expecting_exit({{"TOOLS_NODE_ID", "no spaces"}});
    CHECK(bad_code != 0);
    CHECK(bad_text.find("TOOLS_NODE_ID") != std::string::npos);
  }
}
