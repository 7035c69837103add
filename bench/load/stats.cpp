// SPDX-License-Identifier: Apache-2.0
// Percentiles, the table and the JSON of a pagi-load run.
#include "stats.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>

namespace pagi_load {
namespace {

// grpc::StatusCode values 0-16, as grpc's documentation spells them.
constexpr std::array<std::string_view, 17> status_names = {
    "OK",        "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

std::string status_name(int code) {
  if (code >= 0 && static_cast<std::size_t>(code) < status_names.size()) {
    return std::string(status_names[static_cast<std::size_t>(code)]);
  }
  return "STATUS_" + std::to_string(code);
}

// Nearest rank: the smallest latency that at least p of the samples do not exceed.
double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]) / 1e6;
}

std::string name_of(const std::string& name) { return name; }
std::string name_of(int code) { return std::to_string(code); }

// "name=count name=count", in the map's order.
template <class Key>
std::string counts(const std::map<Key, std::uint64_t>& by_name) {
  std::string text;
  for (const auto& [name, count] : by_name) {
    if (!text.empty()) text += ' ';
    text += name_of(name) + '=' + std::to_string(count);
  }
  return text;
}

nlohmann::json to_json(const Summary& summary) {
  nlohmann::json exit_codes = nlohmann::json::object();  // JSON keys are strings: "0", "3", "124"
  for (const auto& [code, count] : summary.by_exit_code) exit_codes[std::to_string(code)] = count;
  return {{"requests", summary.requests}, {"seconds", summary.seconds}, {"rps", summary.rps},
          {"p50_ms", summary.p50_ms},     {"p90_ms", summary.p90_ms},   {"p99_ms", summary.p99_ms},
          {"max_ms", summary.max_ms},     {"by_status", summary.by_status}, {"by_outcome", summary.by_outcome},
          {"by_exit_code", exit_codes}};
}

void print_row(std::ostream& out, std::string_view name, const Summary& summary) {
  out << std::left << std::setw(9) << name << std::right << std::setw(9) << summary.requests << std::setw(10)
      << summary.rps << std::setw(9) << summary.p50_ms << std::setw(9) << summary.p90_ms << std::setw(9)
      << summary.p99_ms << std::setw(9) << summary.max_ms << "  " << counts(summary.by_outcome) << "  ["
      << counts(summary.by_status) << ']';
  if (!summary.by_exit_code.empty()) out << "  exit " << counts(summary.by_exit_code);
  out << '\n';
}

}  // namespace

void Tally::add(const Sample& sample) {
  latencies_ns.push_back(sample.latency.count());
  ++by_status[static_cast<int>(sample.status)];
  ++by_outcome[static_cast<std::size_t>(sample.outcome)];
  if (sample.exit_code) ++by_exit_code[*sample.exit_code];
}

void Tally::merge(const Tally& other) {
  latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
  for (const auto& [code, count] : other.by_status) by_status[code] += count;
  for (std::size_t o = 0; o < outcome_count; ++o) by_outcome[o] += other.by_outcome[o];
  for (const auto& [code, count] : other.by_exit_code) by_exit_code[code] += count;
}

Summary summarize(Tally tally, double seconds) {
  auto& latencies = tally.latencies_ns;
  std::sort(latencies.begin(), latencies.end());
  Summary summary;
  summary.requests = latencies.size();
  summary.seconds = seconds;
  summary.rps = seconds > 0 ? static_cast<double>(summary.requests) / seconds : 0;
  summary.p50_ms = percentile_ms(latencies, 0.50);
  summary.p90_ms = percentile_ms(latencies, 0.90);
  summary.p99_ms = percentile_ms(latencies, 0.99);
  summary.max_ms = percentile_ms(latencies, 1.0);
  for (const auto& [code, count] : tally.by_status) summary.by_status[status_name(code)] = count;
  for (std::size_t o = 0; o < outcome_count; ++o) {
    if (tally.by_outcome[o] > 0) summary.by_outcome[std::string(outcome_names[o])] = tally.by_outcome[o];
  }
  summary.by_exit_code = tally.by_exit_code;
  return summary;
}

Report make_report(const Tallies& merged, double seconds) {
  Report report;
  report.seconds = seconds;
  Tally total;
  for (std::size_t k = 0; k < kind_count; ++k) {
    if (merged[k].latencies_ns.empty()) continue;
    total.merge(merged[k]);
    report.kinds.emplace_back(static_cast<Kind>(k), summarize(merged[k], seconds));
  }
  report.total = summarize(std::move(total), seconds);
  return report;
}

void print_report(const Report& report, std::ostream& out) {
  const double cpu_share = report.seconds > 0 ? report.client_cpu_seconds / report.seconds * 100 : 0;
  out << std::fixed << std::setprecision(2) << "target " << report.target << "  concurrency " << report.concurrency
      << (report.stream ? "  (StreamExecution)" : "") << "  wall " << report.seconds << " s  requests "
      << report.total.requests << "  rps " << std::setprecision(1) << report.total.rps << '\n'
      << std::setprecision(2) << "pagi-load CPU " << report.client_cpu_seconds << " s (" << std::setprecision(0)
      << cpu_share << " % of one CPU)\n"
      << std::setprecision(1) << "kind      requests       rps   p50 ms   p90 ms   p99 ms   max ms  outcomes  [statuses]  exit codes\n";
  for (const auto& [kind, summary] : report.kinds) print_row(out, kind_names[static_cast<std::size_t>(kind)], summary);
  if (report.kinds.size() > 1) print_row(out, "total", report.total);
}

bool write_json(const Report& report, const std::filesystem::path& path) {
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [kind, summary] : report.kinds) kinds[std::string(kind_names[static_cast<std::size_t>(kind)])] = to_json(summary);
  const nlohmann::json json = {{"target", report.target},
                               {"concurrency", report.concurrency},
                               {"stream", report.stream},
                               {"seconds", report.seconds},
                               {"client_cpu_seconds", report.client_cpu_seconds},
                               {"total", to_json(report.total)},
                               {"by_kind", kinds}};
  std::ofstream file(path);
  file << json.dump(2) << '\n';
  if (!file.flush()) {
    std::cerr << "pagi-load: cannot write " << path.string() << '\n';
    return false;
  }
  return true;
}

}  // namespace pagi_load
