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

TEST_SUITE("history") {
  TEST_CASE("pages newest first with filters and a token for the next page") {
    History history(100);
    for (int i = 0; i < 30; ++i) {
      history.record(ExecutionRecord{.execution_id = std::to_string(i),
                                     .twin_id = i % 2 == 0 ? "even" : "odd",
                                     .allowed = i % 3 != 0,
                                     .ran = i % 3 != 0,
                                     .exit_code = i % 5 == 0 ? 1 : 0});
    }
    auto page = history.query({.twin_id = "even", .page_size = 4});
    REQUIRE(page.records.size() == 4);
    CHECK(page.records[0].execution_id == "28");
    CHECK(page.records[3].execution_id == "22");
    REQUIRE(page.next_before != 0);
    page = history.query({.twin_id = "even", .page_size = 4, .before_sequence = page.next_before});
    CHECK(page.records.front().execution_id == "20");
    std::size_t seen = 8;
    while (page.next_before != 0) {
      page = history.query({.twin_id = "even", .page_size = 4, .before_sequence = page.next_before});
      seen += page.records.size();
    }
    CHECK(seen == 8 + 7);  // 15 even records, the last page may hold fewer
    const auto refused = history.query({.outcome = pagi_exec::RecordOutcome::refused, .page_size = 100});
    CHECK(refused.records.size() == 10);
    CHECK(refused.next_before == 0);
    const auto failed = history.query({.outcome = pagi_exec::RecordOutcome::failed, .page_size = 100});
    for (const auto& r : failed.records) CHECK(r.exit_code == 1);
  }

  TEST_CASE("the output budget drops the oldest outputs, never the records") {
    History history(10, /*output_budget_bytes=*/1000);
    for (int i = 0; i < 10; ++i) {
      auto r = rec(i);
      r.out.lines = {std::string(299, 'x')};  // 300 bytes with its newline
      history.record(std::move(r));
    }
    CHECK(history.size() == 10);
    const auto all = history.newest_first();
    for (int i = 0; i < 3; ++i) CHECK(all[static_cast<std::size_t>(i)].out.lines.size() == 1);
    for (std::size_t i = 3; i < 10; ++i) {
      CHECK(all[i].out.lines.empty());
      CHECK(all[i].output_dropped);
    }
  }

  TEST_CASE("outcome names parse") {
    CHECK(pagi_exec::record_outcome_from_string("timed_out") == pagi_exec::RecordOutcome::timed_out);
    CHECK_FALSE(pagi_exec::record_outcome_from_string("bogus"));
  }
}
