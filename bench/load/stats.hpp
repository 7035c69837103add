// SPDX-License-Identifier: Apache-2.0
// pagi-load's figures: exact latencies and counts per kind, merged across clients, summarised as
// throughput and percentiles, printed as a table and written as JSON.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "workload.hpp"

namespace pagi_load {

/// Every sample of one kind: each latency kept (sorted only at the end), counts by status and
/// outcome. One per kind per client while running, so no lock is taken on the hot path.
struct Tally {
  std::vector<std::int64_t> latencies_ns;
  std::map<int, std::uint64_t> by_status;  // grpc::StatusCode value -> count
  std::array<std::uint64_t, outcome_count> by_outcome{};
  std::map<int, std::uint64_t> by_exit_code;  // executions answered OK only

  void add(const Sample& sample);
  void merge(const Tally& other);
};
using Tallies = std::array<Tally, kind_count>;

/// A tally as reported: what --json writes for the total and for each kind.
struct Summary {
  std::uint64_t requests = 0;
  double seconds = 0;
  double rps = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<std::string, std::uint64_t> by_status;   // "OK", "RESOURCE_EXHAUSTED", ...
  std::map<std::string, std::uint64_t> by_outcome;  // "succeeded", "refused", ...
  std::map<int, std::uint64_t> by_exit_code;        // of executions answered OK
};

/// The whole run.
struct Report {
  std::string target;
  unsigned concurrency = 0;
  bool stream = false;
  double seconds = 0;             // wall time of the measured phase
  double client_cpu_seconds = 0;  // pagi-load's own user + system CPU in that phase
  Summary total;
  std::vector<std::pair<Kind, Summary>> kinds;  // the kinds that were called, in Kind order
};

/// Summarises `tally` over `seconds` of wall time (sorts its latencies).
[[nodiscard]] Summary summarize(Tally tally, double seconds);

/// The report of a run whose clients' tallies are merged in `merged`.
[[nodiscard]] Report make_report(const Tallies& merged, double seconds);

void print_report(const Report& report, std::ostream& out);

/// Writes the report as JSON; false (and a line on stderr) when the file cannot be written.
[[nodiscard]] bool write_json(const Report& report, const std::filesystem::path& path);

}  // namespace pagi_load
