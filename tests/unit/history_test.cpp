// SPDX-License-Identifier: Apache-2.0
// History: a fixed ring of the last N records, newest first.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include <pagi_exec/history.hpp>

#include <set>

using pagi_exec::ExecutionRecord;
using pagi_exec::History;

namespace {
ExecutionRecord rec(int i) { return ExecutionRecord{.execution_id = std::to_string(i), .twin_id = "t"}; }
}  // namespace

TEST_SUITE("history") {
  TEST_CASE("keeps records newest first") {
    History history(5);
    for (int i = 0; i < 3; ++i) REQUIRE(history.record(rec(i)));
    const auto all = history.newest_first();
    REQUIRE(all.size() == 3);
    CHECK(all[0].execution_id == "2");
    CHECK(all[2].execution_id == "0");
  }

  TEST_CASE("wraps around, dropping the oldest") {
    History history(1000);
    for (int i = 0; i < 2500; ++i) REQUIRE(history.record(rec(i)));
    CHECK(history.size() == 1000);
    CHECK(history.capacity() == 1000);
    const auto all = history.newest_first();
    REQUIRE(all.size() == 1000);
    CHECK(all.front().execution_id == "2499");
    CHECK(all.back().execution_id == "1500");
    CHECK(*history.find("1500"));
    CHECK_FALSE(*history.find("1499"));
    CHECK(history.newest_first(2).size() == 2);
  }

  TEST_CASE("the default capacity is the seed's 1000") { CHECK(History().capacity() == 1000); }

  TEST_CASE("concurrent writers lose nothing within capacity") {
    History history(4000);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 1000; ++i) (void)history.record(rec(t * 1000 + i));  // a ring never fails
      });
    }
    for (auto& w : writers) w.join();
    CHECK(history.size() == 4000);
    for (int id : {0, 999, 1000, 3999}) CHECK(*history.find(std::to_string(id)));
  }
}

TEST_SUITE("history") {
  TEST_CASE("pages newest first with filters and a token for the next page") {
    History history(100);
    for (int i = 0; i < 30; ++i) {
      REQUIRE(history.record(ExecutionRecord{.execution_id = std::to_string(i),
                                     .twin_id = i % 2 == 0 ? "even" : "odd",
                                     .allowed = i % 3 != 0,
                                     .ran = i % 3 != 0,
                                     .exit_code = i % 5 == 0 ? 1 : 0}));
    }
    auto page = *history.query({.twin_id = "even", .page_size = 4});
    REQUIRE(page.records.size() == 4);
    CHECK(page.records[0].execution_id == "28");
    CHECK(page.records[3].execution_id == "22");
    REQUIRE(page.next_before != 0);
    page = *history.query({.twin_id = "even", .page_size = 4, .before_sequence = page.next_before});
    CHECK(page.records.front().execution_id == "20");
    std::size_t seen = 8;
    while (page.next_before != 0) {
      page = *history.query({.twin_id = "even", .page_size = 4, .before_sequence = page.next_before});
      seen += page.records.size();
    }
    CHECK(seen == 8 + 7);  // 15 even records, the last page may hold fewer
    const auto refused = *history.query({.outcome = pagi_exec::RecordOutcome::refused, .page_size = 100});
    CHECK(refused.records.size() == 10);
    CHECK(refused.next_before == 0);
    const auto failed = *history.query({.outcome = pagi_exec::RecordOutcome::failed, .page_size = 100});
    for (const auto& r : failed.records) CHECK(r.exit_code == 1);
  }

  TEST_CASE("the output budget drops the oldest outputs, never the records") {
    History history(10, /*output_budget_bytes=*/1000);
    for (int i = 0; i < 10; ++i) {
      auto r = rec(i);
      r.out.lines = {std::string(299, 'x')};  // 300 bytes with its newline
      REQUIRE(history.record(std::move(r)));
    }
    CHECK(history.size() == 10);
    const auto all = history.newest_first();
    for (int i = 0; i < 3; ++i) CHECK(all[static_cast<std::size_t>(i)].out.lines.size() == 1);
    for (std::size_t i = 3; i < 10; ++i) {
      CHECK(all[i].out.lines.empty());
      CHECK(all[i].output_dropped);
    }
  }

  TEST_CASE("one table of outcome names; a history holds all but auth_rejected") {
    for (const auto outcome : pagi_exec::all_record_outcomes) {
      CHECK(pagi_exec::record_outcome_from_string(pagi_exec::to_string(outcome)) == outcome);
    }
    CHECK(pagi_exec::history_outcome_from_string("failed") == pagi_exec::RecordOutcome::failed);
    const auto rejected = pagi_exec::history_outcome_from_string("auth_rejected");
    REQUIRE_FALSE(rejected);
    CHECK(rejected.error().code == pagi_exec::Errc::invalid_request);
    CHECK(rejected.error().message() ==
          "outcome 'auth_rejected' is not one of allowed, refused, succeeded, failed, timed_out");
  }

  TEST_CASE("a record of an allowed request matches allowed and how it ended, nothing else") {
    using pagi_exec::RecordOutcome;
    const ExecutionRecord ok{.allowed = true, .ran = true, .exit_code = 0};
    const ExecutionRecord timed{.allowed = true, .ran = true, .exit_code = 124, .timed_out = true};
    const ExecutionRecord refused{.allowed = false, .exit_code = 1};
    for (const auto outcome : pagi_exec::all_record_outcomes) {
      CAPTURE(pagi_exec::to_string(outcome));
      CHECK(pagi_exec::matches(ok, outcome) == (outcome == RecordOutcome::allowed || outcome == RecordOutcome::succeeded));
      CHECK(pagi_exec::matches(timed, outcome) == (outcome == RecordOutcome::allowed || outcome == RecordOutcome::timed_out));
      CHECK(pagi_exec::matches(refused, outcome) == (outcome == RecordOutcome::refused));
    }
  }

  TEST_CASE("outcome names parse") {
    CHECK(pagi_exec::record_outcome_from_string("timed_out") == pagi_exec::RecordOutcome::timed_out);
    CHECK_FALSE(pagi_exec::record_outcome_from_string("bogus"));
  }

  TEST_CASE("a record keeps a bounded prefix of what the request carried, and says so") {
    const pagi_exec::Request request{.tool = std::string(1 << 20, 't'),
                                     .args = std::vector<std::string>(100, std::string(10000, 'a')),
                                     .twin_id = "twin", .job_id = std::string(50000, 'j')};
    pagi_exec::Outcome outcome;
    outcome.decision.reason = std::string(1 << 20, 'r');
    outcome.message = std::string(1 << 20, 'm');
    const auto record = pagi_exec::make_record(request, outcome, {}, {});
    std::size_t kept = 0;
    for (const auto& arg : record.args) kept += arg.size();
    CHECK(kept <= pagi_exec::max_recorded_args_bytes);
    CHECK(record.arg_count == 100);
    CHECK(record.args_truncated);
    CHECK(record.tool.size() <= pagi_exec::max_recorded_args_bytes);
    CHECK(record.job_id.size() <= pagi_exec::max_recorded_args_bytes);
    CHECK(record.reason.size() <= pagi_exec::max_recorded_text_bytes);
    CHECK(record.message.size() <= pagi_exec::max_recorded_text_bytes);
    CHECK(pagi_exec::encoded_size_bound(record) < 32 * 1024);
    const auto small = pagi_exec::make_record({.tool = "ls", .args = {"-l", ""}, .twin_id = "t"}, outcome, {}, {});
    CHECK(small.args == std::vector<std::string>{"-l", ""});
    CHECK_FALSE(small.args_truncated);
    CHECK(small.arg_count == 2);
  }

  TEST_CASE("bounded_args cuts each arg and the total, never inside a UTF-8 character") {
    const std::vector<std::string> args = {"0123456789", "abc", "\xC3\xA9\xC3\xA9", "z"};
    const auto cut = pagi_exec::bounded_args(args, 14, 8);
    CHECK(cut.kept == std::vector<std::string>{"01234567", "abc", "\xC3\xA9", "z"});
    CHECK(cut.truncated);
    const auto whole = pagi_exec::bounded_args(args, 100);
    CHECK(whole.kept == args);
    CHECK_FALSE(whole.truncated);
    CHECK(pagi_exec::bounded_args(std::vector<std::string>(10000, ""), 100).kept.size() == 100);
  }

  TEST_CASE("every page stays within its byte budget and the pages still reach every record") {
    History history(200, 1ULL << 30);
    for (int i = 0; i < 120; ++i) {
      auto record = rec(i);
      // Some records hold a lot of output, one alone more than a page may hold.
      const std::size_t lines = i == 60 ? 5000 : (i % 3 == 0 ? 300 : 1);
      record.out.lines.assign(lines, std::string(1000, 'o'));
      REQUIRE(history.record(std::move(record)));
    }
    const std::uint64_t budget = 1ULL << 20;
    std::set<std::string> seen;
    std::uint64_t before = 0;
    int pages = 0;
    for (; pages < 1000; ++pages) {
      const auto page = *history.query({.page_size = 50, .before_sequence = before, .max_page_bytes = budget});
      REQUIRE_FALSE(page.records.empty());
      std::uint64_t bytes = 0;
      for (const auto& record : page.records) {
        bytes += pagi_exec::encoded_size_bound(record);
        CHECK(seen.insert(record.execution_id).second);
        if (record.execution_id == "60") CHECK(record.output_dropped);
      }
      CHECK(bytes <= budget);
      if (page.next_before == 0) break;
      before = page.next_before;
    }
    CHECK(seen.size() == 120);
    CHECK(pages > 3);  // the budget, not the page size, ended pages
    // The record itself keeps its output: only that page came without it.
    CHECK((*history.find("60"))->out.lines.size() == 5000);
  }
}

