// SPDX-License-Identifier: Apache-2.0
// History: a fixed ring of the last N records, newest first.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include <pagi_exec/history.hpp>

using pagi_exec::ExecutionRecord;
using pagi_exec::History;

namespace {
ExecutionRecord rec(int i) { return ExecutionRecord{.execution_id = std::to_string(i), .twin_id = "t"}; }
}  // namespace

TEST_SUITE("history") {
  TEST_CASE("keeps records newest first") {
    History history(5);
    for (int i = 0; i < 3; ++i) history.record(rec(i));
    const auto all = history.newest_first();
    REQUIRE(all.size() == 3);
    CHECK(all[0].execution_id == "2");
    CHECK(all[2].execution_id == "0");
  }

  TEST_CASE("wraps around, dropping the oldest") {
    History history(1000);
    for (int i = 0; i < 2500; ++i) history.record(rec(i));
    CHECK(history.size() == 1000);
    CHECK(history.capacity() == 1000);
    const auto all = history.newest_first();
    REQUIRE(all.size() == 1000);
    CHECK(all.front().execution_id == "2499");
    CHECK(all.back().execution_id == "1500");
    CHECK(history.find("1500"));
    CHECK_FALSE(history.find("1499"));
    CHECK(history.newest_first(2).size() == 2);
  }

  TEST_CASE("the default capacity is the seed's 1000") { CHECK(History().capacity() == 1000); }

  TEST_CASE("concurrent writers lose nothing within capacity") {
    History history(4000);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 1000; ++i) history.record(rec(t * 1000 + i));
      });
    }
    for (auto& w : writers) w.join();
    CHECK(history.size() == 4000);
    for (int id : {0, 999, 1000, 3999}) CHECK(history.find(std::to_string(id)));
  }
}
