// SPDX-License-Identifier: Apache-2.0
// ExecutionStore: one set of cases run against every backend (the memory ring, SQLite, and a
// PostgreSQL this test starts), then what only a durable store promises (restarts, kill -9, age
// retention, several writers).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pagi_exec/execution_store.hpp>
#include <pagi_exec/health.hpp>
#include <pagi_exec/history.hpp>

#include "postgres_cluster.hpp"
#include "postgres_store.hpp"
#include "test_support.hpp"

using pagi_exec::ExecutionRecord;
using pagi_exec::ExecutionStore;
using pagi_exec::HistoryQuery;
using pagi_exec::RecordOutcome;
using pagi_exec::StoreSettings;
using Clock = std::chrono::system_clock;

namespace {

std::shared_ptr<ExecutionStore> must_open(const StoreSettings& settings) {
  auto store = pagi_exec::open_execution_store(settings);
  REQUIRE_MESSAGE(store, (store ? "" : store.error().message()));
  return *store;
}

using Kind = StoreSettings::Kind;

// The PostgreSQL backend itself, without the write queue open_execution_store puts in front of
// it: its own failures and recovery, one call at a time.
std::shared_ptr<ExecutionStore> must_open_backend(const StoreSettings& settings) {
  auto store = pagi_exec::detail::PostgresStore::open(settings);
  REQUIRE_MESSAGE(store, (store ? "" : store.error().message()));
  return *store;
}

// One PostgreSQL for the whole run, started on first use; each case gets a database of its own.
test_support::PostgresCluster& cluster() {
  static test_support::PostgresCluster shared;
  return shared;
}

std::string fresh_database() {
  static int made = 0;
  const auto name = "case_" + std::to_string(++made);
  cluster().create_database(name);
  return cluster().uri(name);
}

// Each case gets a fresh folder; a SQLite backend keeps its file there, a PostgreSQL one its own
// database (made on the first call of settings()).
struct Fixture {
  test_support::TempDir dir;
  std::string database;
  StoreSettings settings(Kind kind, std::size_t max_records = 1000,
                         std::uint64_t budget = pagi_exec::default_history_output_budget) {
    if (kind == Kind::postgresql && database.empty()) database = fresh_database();
    return {.kind = kind,
            .path = kind == Kind::sqlite ? dir.path() / "state" / "history.db" : std::filesystem::path(),
            .uri = kind == Kind::postgresql ? database : std::string(),
            .max_records = max_records,
            .output_budget_bytes = budget};
  }
};

// The backends every conformance case runs on; PostgreSQL when this machine has it (the case
// "postgresql runs here" says visibly when it does not).
std::vector<Kind> backends() {
  std::vector<Kind> kinds = {Kind::memory, Kind::sqlite};
  if (test_support::postgres_unavailable().empty()) kinds.push_back(Kind::postgresql);
  return kinds;
}

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::memory: return "memory";
    case Kind::sqlite: return "sqlite";
    case Kind::postgresql: return "postgresql";
  }
  return "?";
}

ExecutionRecord rec(int i) {
  return ExecutionRecord{.execution_id = "id-" + std::to_string(i), .node = "node-a", .twin_id = "t"};
}

// A record with every field set to something other than its default.
ExecutionRecord full_record() {
  const auto started = Clock::time_point(std::chrono::microseconds(1'700'000'000'123'456));
  return ExecutionRecord{
      .execution_id = "3f2a9c1e-0000-4000-8000-000000000001",
      .node = "node-b.example",
      .twin_id = std::string("tw\0in", 5),
      .job_id = "j\xC3\xA9-1",
      .ns = "n\xE2\x82\xAC",
      .tool = "command_exec",
      .args = {"echo", std::string("a\0b", 3), "", "\xF0\x9F\x98\x80", "\xFF\xFE not UTF-8"},
      .arg_count = 7,
      .args_truncated = true,
      .allowed = true,
      .reason = "allowed by rule",
      .rule = "shell-basic",
      .notes = {"unjudgeable: $(x)", std::string("nul\0note", 8)},
      .ran = true,
      .exit_code = 137,
      .signal = 9,
      .timed_out = true,
      .cancelled = true,
      .limit_hit = pagi_exec::LimitHit::memory,
      .isolation = pagi_exec::Isolation::native,
      .message = "memory_limit_exceeded",
      .out = {.lines = {"line 1", std::string("x\0y", 3), ""}, .truncated = true, .total_bytes = 123456},
      .err = {.lines = {"err \xE2\x9C\x93"}, .truncated = false, .total_bytes = 9},
      .output_dropped = false,
      .usage = {.cpu_user = std::chrono::microseconds(1234), .cpu_system = std::chrono::microseconds(56),
                .max_rss_bytes = 1 << 20, .peak_memory_bytes = 3 << 20},
      .elapsed = std::chrono::microseconds(987654),
      .workspace = pagi_exec::WorkspaceUsage{.bytes = 4096, .entries = 3, .quota_bytes = 1 << 30},
      .egress = pagi_exec::EgressSummary{.allowed = 4, .refused = 2, .bytes_up = 1 << 20, .bytes_down = 5ULL << 32},
      .started = started,
      .finished = started + std::chrono::seconds(1),
  };
}

std::vector<std::string> ids(const std::vector<ExecutionRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.execution_id);
  return out;
}

// Every page of `query`, following next_before, as one list.
std::vector<ExecutionRecord> all_pages(const ExecutionStore& store, HistoryQuery query) {
  std::vector<ExecutionRecord> out;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto page = store.query(query);
    REQUIRE(page);
    out.insert(out.end(), page->records.begin(), page->records.end());
    if (page->next_before == 0) break;
    query.before_sequence = page->next_before;
  }
  return out;
}

}  // namespace

TEST_SUITE("execution store conformance") {
  TEST_CASE("newest first, sequences from 1, find of a known and an unknown id") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind));
      for (int i = 0; i < 5; ++i) REQUIRE(store->record(rec(i)));
      const auto page = store->query({});
      REQUIRE(page);
      CHECK(ids(page->records) == std::vector<std::string>{"id-4", "id-3", "id-2", "id-1", "id-0"});
      CHECK(page->records.front().sequence == 5);
      CHECK(page->records.back().sequence == 1);
      CHECK(page->next_before == 0);
      const auto known = store->find("id-2");
      REQUIRE(known);
      REQUIRE(known->has_value());
      CHECK((*known)->sequence == 3);
      CHECK((*known)->node == "node-a");
      const auto unknown = store->find("id-99");
      REQUIRE(unknown);
      CHECK_FALSE(unknown->has_value());
      CHECK(store->health().healthy);
    }
  }

  TEST_CASE("every field survives the round trip, NUL bytes and invalid UTF-8 included") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind));
      const auto record = full_record();
      REQUIRE(store->record(record));
      auto expected = record;
      expected.sequence = 1;
      const auto found = store->find(record.execution_id);
      REQUIRE(found);
      REQUIRE(found->has_value());
      CHECK(**found == expected);
      const auto by_twin = store->query({.twin_id = record.twin_id});
      REQUIRE(by_twin);
      REQUIRE(by_twin->records.size() == 1);
      CHECK(by_twin->records[0] == expected);
      // A record without a workspace measure stays without one.
      auto bare = rec(1);
      REQUIRE(store->record(bare));
      CHECK_FALSE((*store->find("id-1"))->workspace.has_value());
      CHECK_FALSE((*store->find("id-1"))->egress.has_value());
    }
  }

  TEST_CASE("the filters select what matches() selects, refused requests included") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind));
      std::vector<ExecutionRecord> written;
      for (int i = 0; i < 60; ++i) {
        auto r = rec(i);
        r.twin_id = i % 2 == 0 ? "even" : "odd";
        r.job_id = "job-" + std::to_string(i % 3);
        r.allowed = i % 4 != 0;
        r.ran = r.allowed && i % 7 != 0;
        r.exit_code = i % 5 == 0 ? 1 : 0;
        r.timed_out = r.ran && i % 11 == 0;
        if (!r.allowed) {
          r.reason = "Policy violation: not allowed";
          r.rule = "deny-all";
          r.notes = {"unjudgeable: `x`"};
        }
        REQUIRE(store->record(r));
        written.push_back(r);
      }
      const std::vector<HistoryQuery> queries = {
          {.twin_id = "even"},
          {.job_id = "job-1"},
          {.twin_id = "odd", .job_id = "job-2"},
          {.outcome = RecordOutcome::allowed},
          {.outcome = RecordOutcome::refused},
          {.outcome = RecordOutcome::succeeded},
          {.outcome = RecordOutcome::failed},
          {.outcome = RecordOutcome::timed_out},
          {.outcome = RecordOutcome::auth_rejected},
          {.twin_id = "even", .outcome = RecordOutcome::failed},
          {.twin_id = "nobody"},
      };
      for (const auto& q : queries) {
        std::vector<std::string> expected;
        for (auto it = written.rbegin(); it != written.rend(); ++it) {
          if (pagi_exec::selected(*it, q)) expected.push_back(it->execution_id);
        }
        auto paged = q;
        paged.page_size = 7;
        CHECK(ids(all_pages(*store, paged)) == expected);
      }
      const auto refused = store->query({.outcome = RecordOutcome::refused, .page_size = 1});
      REQUIRE(refused);
      REQUIRE(refused->records.size() == 1);
      CHECK(refused->records[0].execution_id == "id-56");
      CHECK(refused->records[0].rule == "deny-all");
      CHECK(refused->records[0].notes == std::vector<std::string>{"unjudgeable: `x`"});
    }
  }

  TEST_CASE("paging tokens: each page goes on below the last, and page sizes are clamped") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind, 5000));
      for (int i = 0; i < 1200; ++i) REQUIRE(store->record(rec(i)));
      const auto first = store->query({.page_size = 10});
      REQUIRE(first);
      CHECK(first->records.size() == 10);
      CHECK(first->next_before == first->records.back().sequence);
      const auto second = store->query({.page_size = 10, .before_sequence = first->next_before});
      REQUIRE(second);
      CHECK(second->records.front().sequence == first->next_before - 1);
      const auto huge = store->query({.page_size = 100'000});
      REQUIRE(huge);
      CHECK(huge->records.size() == pagi_exec::max_page_size);
      CHECK(huge->next_before != 0);
      const auto zero = store->query({.page_size = 0});
      REQUIRE(zero);
      CHECK(zero->records.size() == 1);
      const auto last = store->query({.page_size = 10, .before_sequence = 4});
      REQUIRE(last);
      CHECK(ids(last->records) == std::vector<std::string>{"id-2", "id-1", "id-0"});
      CHECK(last->next_before == 0);
    }
  }

  TEST_CASE("pages stay within max_page_bytes; a record too big alone comes without its output") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind, 1000, 1ULL << 30));
      for (int i = 0; i < 120; ++i) {
        auto record = rec(i);
        const std::size_t lines = i == 60 ? 5000 : (i % 3 == 0 ? 300 : 1);
        record.out.lines.assign(lines, std::string(1000, 'o'));
        REQUIRE(store->record(record));
      }
      const std::uint64_t budget = 1ULL << 20;
      std::set<std::string> seen;
      HistoryQuery query{.page_size = 50, .max_page_bytes = budget};
      int pages = 0;
      for (; pages < 1000; ++pages) {
        const auto page = store->query(query);
        REQUIRE(page);
        REQUIRE_FALSE(page->records.empty());
        std::uint64_t bytes = 0;
        for (const auto& record : page->records) {
          bytes += pagi_exec::encoded_size_bound(record);
          CHECK(seen.insert(record.execution_id).second);
          if (record.execution_id == "id-60") CHECK(record.output_dropped);
        }
        CHECK(bytes <= budget);
        if (page->next_before == 0) break;
        query.before_sequence = page->next_before;
      }
      CHECK(seen.size() == 120);
      CHECK(pages > 3);
      CHECK((*store->find("id-60"))->out.lines.size() == 5000);
    }
  }

  TEST_CASE("max_records drops the oldest; the output budget drops the oldest outputs, never records") {
    for (const Kind kind : backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind, 10, 1000));
      for (int i = 0; i < 25; ++i) {
        auto r = rec(i);
        r.out.lines = {std::string(299, 'x')};  // 300 bytes with its newline
        REQUIRE(store->record(r));
      }
      const auto all = all_pages(*store, {});
      REQUIRE(all.size() == 10);
      CHECK(all.front().execution_id == "id-24");
      CHECK(all.back().execution_id == "id-15");
      CHECK(all.front().sequence == 25);
      for (std::size_t i = 0; i < 10; ++i) {
        CAPTURE(i);
        CHECK(all[i].out.lines.size() == (i < 3 ? 1U : 0U));
        CHECK(all[i].output_dropped == (i >= 3));
      }
      CHECK_FALSE((*store->find("id-14")).has_value());
    }
  }
}

// The backends that keep records across a restart.
std::vector<Kind> durable_backends() {
  auto kinds = backends();
  kinds.erase(kinds.begin());  // memory
  return kinds;
}

TEST_SUITE("durable stores") {
  TEST_CASE("history and sequences survive closing and reopening the store") {
    for (const Kind kind : durable_backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      const auto settings = f.settings(kind, 5);
      {
        auto store = must_open(settings);
        for (int i = 0; i < 8; ++i) REQUIRE(store->record(rec(i)));
      }
      auto store = must_open(settings);
      REQUIRE(store->record(rec(8)));
      const auto all = all_pages(*store, {});
      CHECK(ids(all) == std::vector<std::string>{"id-8", "id-7", "id-6", "id-5", "id-4"});
      CHECK(all.front().sequence == 9);
    }
  }

  TEST_CASE("every acknowledged record survives kill -9 of the writer") {
    for (const Kind kind : durable_backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      const auto settings = f.settings(kind, 100'000);
      int acks[2];
      REQUIRE(::pipe(acks) == 0);
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        ::close(acks[0]);
        auto store = pagi_exec::open_execution_store(settings);
        if (!store) ::_exit(3);
        for (int i = 0;; ++i) {
          if (!(*store)->record(rec(i))) ::_exit(4);
          const auto n = static_cast<std::uint32_t>(i);
          if (::write(acks[1], &n, sizeof n) != static_cast<ssize_t>(sizeof n)) ::_exit(5);
        }
      }
      ::close(acks[1]);
      std::uint32_t last = 0;
      int read_acks = 0;
      while (read_acks < 300) {
        if (::read(acks[0], &last, sizeof last) != static_cast<ssize_t>(sizeof last)) break;
        ++read_acks;
      }
      ::kill(child, SIGKILL);  // mid-write, most likely: the child never stops on its own
      int status = 0;
      REQUIRE(::waitpid(child, &status, 0) == child);
      ::close(acks[0]);
      REQUIRE(read_acks == 300);
      CHECK(WIFSIGNALED(status));
      auto store = must_open(settings);
      for (std::uint32_t i = 0; i <= last; ++i) {
        const auto found = store->find("id-" + std::to_string(i));
        REQUIRE(found);
        CHECK_MESSAGE(found->has_value(), "acknowledged record id-" << i << " lost");
      }
      REQUIRE(store->record(rec(-1)));
      CHECK((*store->find("id--1"))->sequence > last + 1);  // never reuses a sequence
    }
  }

  // SQLite writes concurrent records in shared transactions (group commit): each record() still
  // returns once its own record is in, and the order stays one order with no gaps.
  TEST_CASE("writers at once on one store: every record once, one order with no gaps, each writer's in its order") {
    for (const Kind kind : durable_backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto store = must_open(f.settings(kind, 100'000));
      constexpr int writers = 16;
      constexpr int each = 40;
      std::atomic<int> failed = 0;
      {
        std::vector<std::jthread> threads;
        for (int w = 0; w < writers; ++w) {
          threads.emplace_back([&, w] {
            for (int i = 0; i < each; ++i) {
              const auto id = w * 1000 + i;
              if (!store->record(rec(id))) ++failed;
              // Acknowledged means stored: found at once, from this thread.
              const auto found = store->find("id-" + std::to_string(id));
              if (!found || !found->has_value()) ++failed;
            }
          });
        }
      }
      CHECK(failed == 0);
      const auto all = all_pages(*store, {.page_size = 64});
      REQUIRE(all.size() == writers * each);
      std::map<int, std::uint64_t> last_of_writer;
      for (std::size_t i = 0; i < all.size(); ++i) {
        CHECK(all[i].sequence == all.size() - i);
        const int id = std::stoi(all[i].execution_id.substr(3));
        const auto [it, first] = last_of_writer.emplace(id / 1000, all[i].sequence);
        if (!first) {
          CHECK(all[i].sequence < it->second);  // newest first: a writer's earlier record is older
          it->second = all[i].sequence;
        }
      }
      CHECK(last_of_writer.size() == writers);
    }
  }

  TEST_CASE("records past max_age_days go at open; newer ones stay") {
    for (const Kind kind : durable_backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      auto settings = f.settings(kind);
      settings.max_age_days = 2;
      {
        auto store = must_open(settings);
        auto old = rec(0);
        old.finished = Clock::now() - std::chrono::hours(24 * 3);
        REQUIRE(store->record(old));
        auto fresh = rec(1);
        fresh.finished = Clock::now() - std::chrono::hours(24);
        REQUIRE(store->record(fresh));
      }
      auto store = must_open(settings);
      CHECK_FALSE((*store->find("id-0")).has_value());
      CHECK((*store->find("id-1")).has_value());
    }
  }

  TEST_CASE("a store of schema 1 (before egress) is migrated at open and keeps its records") {
    constexpr const char* drop_egress =
        "ALTER TABLE executions DROP COLUMN has_egress; ALTER TABLE executions DROP COLUMN egress_allowed; "
        "ALTER TABLE executions DROP COLUMN egress_refused; ALTER TABLE executions DROP COLUMN egress_bytes_up; "
        "ALTER TABLE executions DROP COLUMN egress_bytes_down;";
    for (const Kind kind : durable_backends()) {
      CAPTURE(name_of(kind));
      Fixture f;
      const auto settings = f.settings(kind);
      REQUIRE(must_open(settings)->record(rec(1)));
      // Take the database back to what a server of schema 1 left.
      if (kind == Kind::sqlite) {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(settings.path.c_str(), &db) == SQLITE_OK);
        const std::string sql = std::string(drop_egress) + " PRAGMA user_version = 1;";
        CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
      } else {
        const auto database = f.database.substr(f.database.rfind('/') + 1);
        cluster().sql(database, std::string(drop_egress) + " DELETE FROM schema_version WHERE version > 1;");
      }
      auto store = must_open(settings);
      const auto old = *store->find("id-1");
      REQUIRE(old.has_value());
      CHECK_FALSE(old->egress.has_value());
      auto with_egress = rec(2);
      with_egress.egress = pagi_exec::EgressSummary{.allowed = 1, .refused = 2, .bytes_up = 3, .bytes_down = 4};
      REQUIRE(store->record(with_egress));
      CHECK((*store->find("id-2"))->egress == with_egress.egress);
    }
  }

  TEST_CASE("an unopenable file is an error naming it") {
    Fixture f;
    auto settings = f.settings(Kind::sqlite);
    std::filesystem::create_directories(settings.path);  // a folder where the file should be
    const auto store = pagi_exec::open_execution_store(settings);
    REQUIRE_FALSE(store);
    CHECK(store.error().message().find(settings.path.string()) != std::string::npos);
    CHECK_FALSE(pagi_exec::parse_store_location("sqlite:relative.db", {}));
    CHECK_FALSE(pagi_exec::parse_store_location("mysql://x", {}));
    const auto parsed = pagi_exec::parse_store_location("sqlite:/var/lib/pagi-exec/history.db", {});
    REQUIRE(parsed);
    CHECK(pagi_exec::to_string(*parsed) == "sqlite:/var/lib/pagi-exec/history.db");
  }

  TEST_CASE("the time a write adds to an answer (reported, not asserted)") {
    for (const Kind kind : durable_backends()) {
      Fixture f;
      auto store = must_open(f.settings(kind));
      std::vector<double> micros;
      for (int i = 0; i < 500; ++i) {
        auto record = full_record();
        record.execution_id = "lat-" + std::to_string(i);
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(store->record(record));
        micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(micros.begin(), micros.end());
      MESSAGE(std::string(name_of(kind)) << " record(): p50 " << micros[micros.size() / 2] << " us, p99 "
                            << micros[micros.size() * 99 / 100] << " us over " << micros.size()
                            << " writes (fsync off for postgresql: see bench/store_bench for durable figures)");
    }
  }
}

TEST_SUITE("postgresql store") {
  TEST_CASE("postgresql runs here" * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    CHECK(cluster().pid() > 0);
  }

  TEST_CASE("locations: postgresql:// and postgres:// URIs, the password masked when shown") {
    const auto parsed = pagi_exec::parse_store_location("postgresql://pagi:s3cret@db.example:5432/pagi?sslmode=require", {});
    REQUIRE(parsed);
    CHECK(parsed->kind == Kind::postgresql);
    CHECK(parsed->uri == "postgresql://pagi:s3cret@db.example:5432/pagi?sslmode=require");
    CHECK(pagi_exec::to_string(*parsed) == "postgresql://pagi:***@db.example:5432/pagi?sslmode=require");
    const auto short_form = pagi_exec::parse_store_location("postgres://db/pagi?user=u&password=p%40ss&x=1", {});
    REQUIRE(short_form);
    CHECK(pagi_exec::to_string(*short_form) == "postgres://db/pagi?user=u&password=***&x=1");
    CHECK(pagi_exec::masked_uri("postgresql://u@h/db") == "postgresql://u@h/db");
    CHECK(pagi_exec::masked_uri("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db");
    const auto refused = pagi_exec::parse_store_location("postgresq://u:hidden@h/db", {});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message().find("hidden") == std::string::npos);
  }

  TEST_CASE("a database that is not there fails fast and says so; the store mends when it is back"
            * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    Fixture f;
    auto settings = f.settings(Kind::postgresql);
    const auto unreachable = settings.uri.substr(0, settings.uri.rfind('/')) + "/no_such_database";
    auto absent = settings;
    absent.uri = unreachable;
    const auto refused = pagi_exec::open_execution_store(absent);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == pagi_exec::Errc::io);
    CHECK(refused.error().message().find("no_such_database") != std::string::npos);

    auto store = must_open_backend(settings);
    REQUIRE(store->record(rec(0)));
    // Every connection the store holds is ended by the server, as a restart of it would.
    cluster().terminate_sessions(f.database.substr(f.database.rfind('/') + 1));
    // A pooled connection that was ended fails its next write (or libpqxx reconnects at once);
    // a failure is in health() until a write succeeds.
    for (int i = 1; i <= 8; ++i) {
      const auto written = store->record(rec(i));
      if (written) continue;
      CHECK(written.error().code == pagi_exec::Errc::io);
      CHECK_FALSE(store->health().healthy);
      CHECK(store->health().failed_writes == 1);
      CHECK(store->health().detail.find("history database postgresql://pagi@127.0.0.1") == 0);
      break;
    }
    REQUIRE(store->record(rec(9)));  // a new connection
    CHECK(store->health().healthy);
    CHECK(store->health().detail.find("postgresql ") == 0);
    CHECK((*store->find("id-9")).has_value());
  }

  TEST_CASE("while the database is stopped writes fail and health says so, without the password; then they resume"
            * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    test_support::PostgresCluster own;  // stopped below: not the one the other cases share
    own.create_database("outage");
    const auto uri = "postgresql://pagi:pw-not-shown@127.0.0.1:" + std::to_string(own.port()) + "/outage";
    auto parsed = pagi_exec::parse_store_location(uri, {});
    REQUIRE(parsed);
    auto store = must_open_backend(*parsed);
    REQUIRE(store->record(rec(0)));
    own.stop();
    const auto written = store->record(rec(1));
    REQUIRE_FALSE(written);
    CHECK(written.error().code == pagi_exec::Errc::io);
    CHECK(written.error().message().find("pw-not-shown") == std::string::npos);
    const auto health = store->health();
    CHECK_FALSE(health.healthy);
    CHECK(health.failed_writes == 1);
    CHECK(health.detail.find("pw-not-shown") == std::string::npos);
    CHECK(health.detail.find("postgresql://pagi:***@127.0.0.1") != std::string::npos);
    CHECK_FALSE(store->record(rec(2)));  // a new connection is tried each time, and fails
    CHECK_FALSE(store->query({}));
    own.restart();
    REQUIRE(store->record(rec(3)));
    CHECK(store->health().healthy);
    CHECK(store->health().failed_writes == 2);
    CHECK(ids(all_pages(*store, {})) == std::vector<std::string>{"id-3", "id-0"});
  }

  TEST_CASE("behind the write queue, records answered while the database is stopped reach it in order"
            * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    test_support::PostgresCluster own;
    own.create_database("queued");
    auto parsed = pagi_exec::parse_store_location(
        "postgresql://pagi:pw@127.0.0.1:" + std::to_string(own.port()) + "/queued", {});
    REQUIRE(parsed);
    auto store = must_open(*parsed);
    REQUIRE(store->record(rec(0)));
    own.stop();
    CHECK_FALSE(store->record(rec(1)));  // queued, said so
    CHECK_FALSE(store->record(rec(2)));
    CHECK_FALSE(store->health().healthy);
    CHECK((*store->find("id-2")).has_value());  // from the queue
    own.restart();
    // The store's thread retries with a delay of at most 5 s: wait for it, bounded.
    for (int i = 0; i < 600 && !store->health().healthy; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(store->health().healthy);
    CHECK(ids(all_pages(*store, {})) == std::vector<std::string>{"id-2", "id-1", "id-0"});
  }

  TEST_CASE("the schema is versioned: opening again migrates nothing, a newer schema is refused"
            * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    Fixture f;
    const auto settings = f.settings(Kind::postgresql);
    const auto database = f.database.substr(f.database.rfind('/') + 1);
    { auto store = must_open(settings); }
    { auto again = must_open(settings); }  // finds the latest version: no second CREATE TABLE
    cluster().sql(database, "INSERT INTO schema_version VALUES (99)");
    const auto refused = pagi_exec::open_execution_store(settings);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == pagi_exec::Errc::invalid_config);
    CHECK(refused.error().message().find("schema version 99, newer than this server's 2") != std::string::npos);
  }

  TEST_CASE("several writers share one order with no gaps and every record"
            * test_support::skip_if(!test_support::postgres_unavailable().empty(), "no PostgreSQL server binaries: apt-get install postgresql (scripts/install-deps.sh)")) {
    Fixture f;
    auto settings = f.settings(Kind::postgresql, 100'000);
    std::vector<std::shared_ptr<ExecutionStore>> writers;
    for (int w = 0; w < 3; ++w) writers.push_back(must_open(settings));  // as three servers would
    std::vector<std::thread> threads;
    for (int w = 0; w < 3; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0; i < 50; ++i) {
          auto r = rec(w * 1000 + i);
          r.node = "node-" + std::to_string(w);
          if (!writers[static_cast<std::size_t>(w)]->record(r)) return;
        }
      });
    }
    for (auto& t : threads) t.join();
    const auto all = all_pages(*writers[0], {.page_size = 17});
    REQUIRE(all.size() == 150);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].sequence == 150 - i);
    for (const auto& other : {writers[1], writers[2]}) CHECK(ids(all_pages(*other, {.page_size = 40})) == ids(all));
  }
}

namespace {
// A store that cannot write, as a full disk or an absent database would make it.
class FailingStore final : public ExecutionStore {
 public:
  pagi_exec::Result<void> record(ExecutionRecord) override { return pagi_exec::fail(pagi_exec::Errc::io, "disk full"); }
  pagi_exec::Result<pagi_exec::HistoryPage> query(const HistoryQuery&) const override { return pagi_exec::HistoryPage{}; }
  pagi_exec::Result<std::optional<ExecutionRecord>> find(const std::string&) const override { return std::nullopt; }
  pagi_exec::StoreHealth health() const override {
    return {.healthy = false, .detail = "history database /x.db: insert: disk full", .failed_writes = 3};
  }
};
}  // namespace

TEST_SUITE("execution store health") {
  TEST_CASE("a failing store makes the host degraded, saying so; a healthy one does not") {
    pagi_exec::HealthReport report;
    report.history = std::make_shared<pagi_exec::History>();
    CHECK_FALSE(report.degraded());
    report.history = std::make_shared<FailingStore>();
    CHECK(report.degraded());
    CHECK(std::string(pagi_exec::health_status(report)) == "degraded");
    const auto message = pagi_exec::health_message(report);
    CHECK(message.find("execution history failing (3 records not stored") != std::string::npos);
    CHECK(message.find("disk full") != std::string::npos);
  }
}

TEST_SUITE("node ids") {
  TEST_CASE("bounded, safe characters, starting with a letter or digit") {
    for (const char* good : {"a", "node-1", "ip-10-0-0-1.ec2.internal", "N_2"}) CHECK(pagi_exec::validate_node_id(good));
    for (const char* bad : {"", "-x", ".x", "a b", "a/b", "a\nb", "\xC3\xA9"}) {
      CAPTURE(bad);
      CHECK_FALSE(pagi_exec::validate_node_id(bad));
    }
    CHECK(pagi_exec::validate_node_id(std::string(63, 'a')));
    CHECK_FALSE(pagi_exec::validate_node_id(std::string(64, 'a')));
  }

  TEST_CASE("unset, the host name is the node id") {
    CHECK(pagi_exec::node_id_or_host_name("node-7") == std::string("node-7"));
    CHECK_FALSE(pagi_exec::node_id_or_host_name("bad id"));
    const auto host = pagi_exec::node_id_or_host_name("");
    REQUIRE_MESSAGE(host, (host ? "" : host.error().message()));
    CHECK(pagi_exec::validate_node_id(*host));
  }
}
