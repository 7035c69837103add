// SPDX-License-Identifier: Apache-2.0
// store_bench: the time ExecutionStore::record() adds to each answer, per backend (the memory
// ring, SQLite in a temporary file, PostgreSQL on loopback in a throw-away durable cluster).
//
//   store_bench [--records N] [--json FILE]
//
// Each backend takes N records of an `echo`-sized execution (a few args, one line of output),
// one at a time from one thread, as the executor writes them; the backends take turns every 100
// records so machine noise hits each alike. Prints p50, p99 and mean per record in microseconds.
// PostgreSQL runs with fsync on, as a production server would (the store itself asks for
// synchronous_commit=off on its sessions: see lib/postgres_store.cpp). A backend
// that cannot run here is reported as skipped with the reason; exit 77 if none can.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pagi_exec/execution_store.hpp>

// The throw-away cluster comes with the tests' support header, which uses doctest: doctest's
// implementation is compiled here, without its main.
#define DOCTEST_CONFIG_IMPLEMENT
#include "postgres_cluster.hpp"

namespace {

using Clock = std::chrono::steady_clock;

pagi_exec::ExecutionRecord echo_record(int i) {
  const auto now = std::chrono::system_clock::now();
  return pagi_exec::ExecutionRecord{
      .execution_id = "bench-" + std::to_string(i),
      .node = "bench-node",
      .twin_id = "twin-aegis",
      .job_id = "job-" + std::to_string(i % 10),
      .tool = "command_exec",
      .args = {"echo", "hello", std::to_string(i)},
      .arg_count = 3,
      .allowed = true,
      .reason = "allowed by rule",
      .rule = "twin-aegis",
      .ran = true,
      .isolation = pagi_exec::Isolation::native,
      .out = {.lines = {"hello " + std::to_string(i)}, .total_bytes = 12},
      .elapsed = std::chrono::microseconds(900),
      .started = now,
      .finished = now,
  };
}

struct Backend {
  std::string name;
  std::shared_ptr<pagi_exec::ExecutionStore> store;
  std::string skipped;
  std::vector<double> micros;
};

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[at];
}

}  // namespace

int main(int argc, char** argv) {
  int records = 2000;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--records" && i + 1 < argc) {
      records = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: store_bench [--records N] [--json FILE]\n");
      return 2;
    }
  }

  test_support::TempDir dir;
  std::unique_ptr<test_support::PostgresCluster> postgres;
  std::vector<Backend> backends = {{.name = "memory"}, {.name = "sqlite"}, {.name = "postgresql"}};
  const auto max_records = static_cast<std::size_t>(records) * 2;
  backends[0].store = *pagi_exec::open_execution_store({.max_records = max_records});
  auto sqlite = pagi_exec::open_execution_store(
      {.kind = pagi_exec::StoreSettings::Kind::sqlite, .path = dir.path() / "history.db", .max_records = max_records});
  if (sqlite) {
    backends[1].store = *sqlite;
  } else {
    backends[1].skipped = sqlite.error().message();
  }
  if (const auto why = test_support::postgres_unavailable(); !why.empty()) {
    backends[2].skipped = why;
  } else {
    try {
      postgres = std::make_unique<test_support::PostgresCluster>(test_support::PostgresOptions{.durable = true});
      postgres->create_database("bench");
      auto store = pagi_exec::open_execution_store({.kind = pagi_exec::StoreSettings::Kind::postgresql,
                                                    .uri = postgres->uri("bench"),
                                                    .max_records = max_records});
      if (store) {
        backends[2].store = *store;
      } else {
        backends[2].skipped = store.error().message();
      }
    } catch (const std::exception& e) {
      backends[2].skipped = e.what();
    }
  }

  constexpr int turn = 100;
  for (int done = 0; done < records; done += turn) {
    for (auto& backend : backends) {
      if (!backend.store) continue;
      for (int i = done; i < std::min(records, done + turn); ++i) {
        auto record = echo_record(i);
        const auto t0 = Clock::now();
        const auto written = backend.store->record(std::move(record));
        backend.micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        if (!written) {
          std::fprintf(stderr, "store_bench: %s: %s\n", backend.name.c_str(), written.error().message().c_str());
          return 1;
        }
      }
    }
  }

  nlohmann::json report = {{"records", records}, {"backends", nlohmann::json::array()}};
  bool any = false;
  std::printf("%-12s %10s %10s %10s\n", "backend", "p50 us", "p99 us", "mean us");
  for (const auto& backend : backends) {
    if (!backend.store) {
      std::printf("%-12s SKIP: %s\n", backend.name.c_str(), backend.skipped.c_str());
      report["backends"].push_back({{"name", backend.name}, {"skipped", backend.skipped}});
      continue;
    }
    any = true;
    const double p50 = percentile(backend.micros, 0.50);
    const double p99 = percentile(backend.micros, 0.99);
    const double mean =
        std::accumulate(backend.micros.begin(), backend.micros.end(), 0.0) / static_cast<double>(backend.micros.size());
    std::printf("%-12s %10.1f %10.1f %10.1f\n", backend.name.c_str(), p50, p99, mean);
    report["backends"].push_back({{"name", backend.name}, {"p50_us", p50}, {"p99_us", p99}, {"mean_us", mean}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << report.dump(2) << "\n";
  return any ? 0 : 77;
}
