// SPDX-License-Identifier: Apache-2.0
// E2E: three tools-server replicas share one PostgreSQL (a throw-away cluster this test starts).
// A client spreads calls over them round robin; every replica lists all calls in one order, any
// replica finds a call another ran and names that node, and kill -9 of one loses nothing answered.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "postgres_cluster.hpp"
#include "server_fixture.hpp"

using e2e::Server;
using e2e::ServerOptions;
using namespace std::chrono_literals;

namespace {

// Each ListExecutions page in turn (page_size 4, so the tokens are used), newest first.
std::vector<tools::ExecutionRecord> listed(Server& server) {
  std::vector<tools::ExecutionRecord> records;
  tools::ListExecutionsRequest list;
  list.set_page_size(4);
  for (int pages = 0; pages < 1000; ++pages) {
    grpc::ClientContext context;
    tools::ListExecutionsResponse page;
    const auto status = server.stub().ListExecutions(&context, list, &page);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    records.insert(records.end(), page.executions().begin(), page.executions().end());
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  return records;
}

std::vector<std::string> ids_of(const std::vector<tools::ExecutionRecord>& records) {
  std::vector<std::string> ids;
  for (const auto& record : records) ids.push_back(record.execution_id());
  return ids;
}

// One allowed call; its execution id.
std::string call(Server& server, int i) {
  const auto done = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"echo call-" + std::to_string(i)});
  REQUIRE_MESSAGE(done.status.ok(), done.status.error_message());
  REQUIRE(done.response.success());
  return done.response.execution_id();
}

}  // namespace

TEST_SUITE("replicas e2e") {
  TEST_CASE("three replicas on one PostgreSQL: one order, any node answers, kill -9 loses nothing answered") {
    // The only case here: exit 77, which meson reports as skipped, rather than pass without a run.
    if (const auto why = test_support::postgres_unavailable(); !why.empty()) {
      std::printf("SKIP: %s\n", why.c_str());
      std::fflush(stdout);
      std::exit(77);
    }
    test_support::PostgresCluster postgres;
    postgres.create_database("replicas");
    const std::vector<std::string> nodes = {"node-a", "node-b", "node-c"};

    // Started together: their schema migrations meet at the advisory lock.
    std::vector<std::unique_ptr<Server>> replicas(nodes.size());
    std::vector<std::string> start_errors(nodes.size());
    {
      std::vector<std::thread> starting;
      for (std::size_t n = 0; n < nodes.size(); ++n) {
        starting.emplace_back([&, n] {
          try {
            replicas[n] = std::make_unique<Server>(ServerOptions{
                .env = {{"TOOLS_HISTORY", postgres.uri("replicas")}, {"TOOLS_NODE_ID", nodes[n]},
                        {"TOOLS_HISTORY_POOL_SIZE", "2"}}});
          } catch (const std::exception& e) {
            start_errors[n] = e.what();
          }
        });
      }
      for (auto& t : starting) t.join();
    }
    for (std::size_t n = 0; n < nodes.size(); ++n) REQUIRE_MESSAGE(replicas[n], start_errors[n]);

    // Client-side round robin over the three addresses.
    std::vector<std::string> newest_first;
    std::vector<std::string> ran_on;
    for (int i = 0; i < 12; ++i) {
      const auto n = static_cast<std::size_t>(i) % replicas.size();
      newest_first.insert(newest_first.begin(), call(*replicas[n], i));
      ran_on.insert(ran_on.begin(), nodes[n]);
    }
    for (auto& replica : replicas) {
      CAPTURE(replica->address());
      const auto records = listed(*replica);
      CHECK(ids_of(records) == newest_first);
      for (std::size_t i = 0; i < records.size() && i < ran_on.size(); ++i) CHECK(records[i].node() == ran_on[i]);
    }

    // An id run on node A, asked of node C: found, naming node A.
    const auto on_a = newest_first.back();  // call 0 went to node-a
    {
      grpc::ClientContext context;
      tools::GetExecutionRequest get;
      get.set_execution_id(on_a);
      tools::ExecutionRecord record;
      const auto status = replicas[2]->stub().GetExecution(&context, get, &record);
      REQUIRE_MESSAGE(status.ok(), status.error_message());
      CHECK(record.node() == "node-a");
      REQUIRE(record.stdout_logs_size() == 1);
      CHECK(record.stdout_logs(0) == "call-0");
    }

    // kill -9 of node B right after it answered: what it answered is in the shared index, and
    // the others keep serving.
    const auto last_on_b = call(*replicas[1], 100);
    newest_first.insert(newest_first.begin(), last_on_b);
    ::kill(replicas[1]->process().pid(), SIGKILL);
    CHECK(replicas[1]->process().wait_exit(10s) == 128 + SIGKILL);
    for (int i = 200; i < 204; ++i) {
      auto& replica = *replicas[i % 2 == 0 ? 0 : 2];
      newest_first.insert(newest_first.begin(), call(replica, i));
    }
    for (const std::size_t n : {std::size_t{0}, std::size_t{2}}) {
      CAPTURE(nodes[n]);
      CHECK(ids_of(listed(*replicas[n])) == newest_first);
      CHECK(e2e::health(*replicas[n]).status() == "healthy");
    }
  }
}
