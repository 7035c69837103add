// SPDX-License-Identifier: Apache-2.0
// Metrics: recording (relaxed atomics, no lock, no allocation) and the text exposition format.
// See https://prometheus.io/docs/instrumenting/exposition_formats/ for the format.
#include "metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "process_stats.hpp"

namespace tools_server {

Histogram::Histogram(std::span<const double> upper_bounds_s)
    : bounds_s_(upper_bounds_s.begin(), upper_bounds_s.end()),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds_s.size() + 1)) {
  for (const double bound : bounds_s_) bounds_us_.push_back(static_cast<std::int64_t>(std::llround(bound * 1e6)));
}

void Histogram::observe(std::chrono::microseconds duration) noexcept {
  const auto us = std::max<std::int64_t>(duration.count(), 0);
  const auto bucket = std::lower_bound(bounds_us_.begin(), bounds_us_.end(), us) - bounds_us_.begin();
  buckets_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> counts(bounds_s_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = total;
  }
  return counts;
}

double Histogram::sum_s() const noexcept { return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6; }

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[64];
  // Fixed notation where it is short ("0.0005", not "5e-04"), as bucket bounds are usually written.
  const bool fixed = value == 0 || (std::fabs(value) >= 1e-6 && std::fabs(value) < 1e15);
  const auto [end, ec] = fixed ? std::to_chars(text, text + sizeof text, value, std::chars_format::fixed)
                               : std::to_chars(text, text + sizeof text, value);
  return ec == std::errc{} ? std::string(text, end) : "NaN";
}

namespace {

// HELP text escapes backslash and newline only.
std::string escape_help(std::string_view help) {
  std::string out;
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void TextWriter::family(std::string_view name, std::string_view help, std::string_view type) {
  out_.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void TextWriter::labels_and_value(std::initializer_list<Label> labels, std::string_view extra_name,
                                  std::string_view extra_value, std::string_view value) {
  if (labels.size() != 0 || !extra_name.empty()) {
    out_ += '{';
    bool first = true;
    const auto add = [&](std::string_view name, std::string_view text) {
      if (!first) out_ += ',';
      first = false;
      out_.append(name).append("=\"").append(escape_label_value(text)).append("\"");
    };
    for (const auto& [name, text] : labels) add(name, text);
    if (!extra_name.empty()) add(extra_name, extra_value);
    out_ += '}';
  }
  out_.append(" ").append(value).append("\n");
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
  out_.append(name);
  labels_and_value(labels, {}, {}, format_value(value));
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
  out_.append(name);
  labels_and_value(labels, {}, {}, std::to_string(value));
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, std::int64_t value) {
  out_.append(name);
  labels_and_value(labels, {}, {}, std::to_string(value));
}

void TextWriter::histogram(std::string_view name, std::initializer_list<Label> labels, const Histogram& histogram) {
  const auto counts = histogram.cumulative_counts();
  const auto bounds = histogram.upper_bounds_s();
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    out_.append(bucket);
    labels_and_value(labels, "le", i < bounds.size() ? format_value(bounds[i]) : "+Inf", std::to_string(counts[i]));
  }
  sample(std::string(name) + "_sum", labels, histogram.sum_s());
  sample(std::string(name) + "_count", labels, counts.back());
}

namespace {

struct RpcName {
  Rpc rpc;
  std::string_view label;
};
constexpr std::array<RpcName, rpc_count> rpc_names{{
    {Rpc::request_execution, "RequestExecution"},
    {Rpc::stream_execution, "StreamExecution"},
    {Rpc::health_check, "HealthCheck"},
    {Rpc::check_policy, "CheckPolicy"},
    {Rpc::list_executions, "ListExecutions"},
    {Rpc::get_execution, "GetExecution"},
    {Rpc::other, "other"},
}};
constexpr std::string_view service_prefix = "/tools.ToolExecutorService/";

constexpr std::array<std::string_view, status_code_count> status_names{
    "OK",           "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",        "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",          "UNAVAILABLE",    "DATA_LOSS",          "UNAUTHENTICATED"};

constexpr std::size_t unknown_code = 2;

std::size_t code_index(int code) noexcept {
  return code >= 0 && static_cast<std::size_t>(code) < status_code_count ? static_cast<std::size_t>(code) : unknown_code;
}

// Index of each ending (pagi_exec::how_it_ended) in Metrics::executions_.
constexpr std::array<pagi_exec::RecordOutcome, 3> endings{
    pagi_exec::RecordOutcome::succeeded, pagi_exec::RecordOutcome::failed, pagi_exec::RecordOutcome::timed_out};

constexpr std::array<pagi_exec::Isolation, 3> isolations{pagi_exec::Isolation::cwd, pagi_exec::Isolation::bwrap,
                                                         pagi_exec::Isolation::native};

constexpr std::array<pagi_exec::LimitHit, 6> limits{pagi_exec::LimitHit::timeout,   pagi_exec::LimitHit::memory,
                                                    pagi_exec::LimitHit::pids,      pagi_exec::LimitHit::cpu,
                                                    pagi_exec::LimitHit::file_size, pagi_exec::LimitHit::workspace_quota};

// Executions last from milliseconds (a cached `echo`) to the longest time limit (24 h).
constexpr std::array<double, 15> duration_bounds_s{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5,   5,    10,    30,   60,  300, 3600};
// Start-up is a fork and exec (cwd: about a millisecond) up to namespaces, mounts and cgroups.
constexpr std::array<double, 13> startup_bounds_s{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5};

}  // namespace

std::string_view to_string(Rpc rpc) noexcept { return rpc_names[static_cast<std::size_t>(rpc)].label; }

Rpc rpc_from_method(std::string_view method) noexcept {
  if (!method.starts_with(service_prefix)) return Rpc::other;
  method.remove_prefix(service_prefix.size());
  for (const auto& entry : rpc_names) {
    if (entry.rpc != Rpc::other && entry.label == method) return entry.rpc;
  }
  return Rpc::other;
}

std::string_view status_code_name(int code) noexcept { return status_names[code_index(code)]; }

std::string_view to_string(RuleKind kind) noexcept {
  switch (kind) {
    case RuleKind::always_refused: return "always_refused";
    case RuleKind::default_deny: return "default_deny";
    case RuleKind::safe_mode: return "safe_mode";
    case RuleKind::invalid_request: return "invalid_request";
    case RuleKind::twin_deny: return "twins.deny";
    case RuleKind::twin_allow: return "twins.allow";
    case RuleKind::twin_allow_all: return "twins.allow_all";
    case RuleKind::other: return "other";
  }
  return "other";
}

// A twin id or a tool may hold any of ".[]", so the shape alone cannot tell a twin's grant from
// its denial: `allowed` does (only grants allow, only deny lists and the rules above refuse).
RuleKind rule_kind(const pagi_exec::Decision& decision) noexcept {
  const std::string_view rule = decision.rule;
  if (rule == "default_deny") return RuleKind::default_deny;
  if (rule == "safe_mode") return RuleKind::safe_mode;
  if (rule == pagi_exec::invalid_request_rule) return RuleKind::invalid_request;
  if (rule.starts_with("always_refused[") && rule.ends_with("]")) return RuleKind::always_refused;
  if (!rule.starts_with("twins.") || !rule.ends_with("]")) return RuleKind::other;
  if (!decision.allowed) return rule.find(".deny[") != std::string_view::npos ? RuleKind::twin_deny : RuleKind::other;
  if (rule.ends_with(".allow[*]")) return RuleKind::twin_allow_all;
  return rule.find(".allow[") != std::string_view::npos ? RuleKind::twin_allow : RuleKind::other;
}

Metrics::Metrics() {
  for (std::size_t i = 0; i < isolation_count; ++i) {
    durations_[i] = std::make_unique<Histogram>(duration_bounds_s);
    startups_[i] = std::make_unique<Histogram>(startup_bounds_s);
  }
}

void Metrics::call_started(Rpc rpc) noexcept { in_flight_[static_cast<std::size_t>(rpc)].add(1); }

void Metrics::call_finished(Rpc rpc, int code) noexcept {
  in_flight_[static_cast<std::size_t>(rpc)].add(-1);
  requests_[static_cast<std::size_t>(rpc)][code_index(code)].add();
}

void Metrics::request_done(const pagi_exec::Result<pagi_exec::Outcome>& result) noexcept {
  if (!result) return;
  const auto& outcome = *result;
  decisions_[static_cast<std::size_t>(rule_kind(outcome.decision))][outcome.decision.allowed ? 1 : 0].add();
  if (!outcome.decision.allowed) return;
  const auto isolation = static_cast<std::size_t>(outcome.isolation) % isolation_count;
  const auto ending = pagi_exec::how_it_ended(outcome.ran, outcome.exit_code, outcome.timed_out);
  const auto column = static_cast<std::size_t>(std::find(endings.begin(), endings.end(), ending) - endings.begin());
  executions_[isolation][column % ending_count].add();
  durations_[isolation]->observe(outcome.elapsed);
  if (outcome.startup.count() > 0) startups_[isolation]->observe(outcome.startup);
  if (outcome.limit_hit != pagi_exec::LimitHit::none) limits_hit_[static_cast<std::size_t>(outcome.limit_hit) - 1].add();
  if (outcome.egress) {
    egress_allowed_.add(outcome.egress->allowed);
    egress_refused_.add(outcome.egress->refused);
    egress_bytes_up_.add(outcome.egress->bytes_up);
    egress_bytes_down_.add(outcome.egress->bytes_down);
  }
}

void Metrics::audit_write_failed() noexcept { audit_failures_.add(); }

void Metrics::policy_reloaded(const pagi_exec::Notices& notices) noexcept {
  if (notices.empty()) return;
  const bool failed = std::any_of(notices.begin(), notices.end(),
                                  [](const auto& notice) { return notice.level == pagi_exec::NoticeLevel::error; });
  (failed ? reloads_failed_ : reloads_succeeded_).add();
}

void Metrics::render(std::string& out, std::uint32_t running, std::string_view policy_revision) const {
  TextWriter w(out);
  w.family("pagi_exec_requests_total", "gRPC calls finished, by method and status code.", "counter");
  for (std::size_t r = 0; r < rpc_count; ++r) {
    for (std::size_t c = 0; c < status_code_count; ++c) {
      const auto n = requests_[r][c].value();
      if (n != 0 || c == 0) w.sample("pagi_exec_requests_total", {{"rpc", rpc_names[r].label}, {"code", status_names[c]}}, n);
    }
  }
  w.family("pagi_exec_requests_in_flight", "gRPC calls begun and not finished, by method.", "gauge");
  for (std::size_t r = 0; r < rpc_count; ++r) {
    w.sample("pagi_exec_requests_in_flight", {{"rpc", rpc_names[r].label}}, in_flight_[r].value());
  }
  w.family("pagi_exec_decisions_total",
           "Policy decisions on execution requests, by the kind of rule that decided and the outcome.", "counter");
  for (std::size_t k = 0; k < rule_kind_count; ++k) {
    for (std::size_t a = 0; a < 2; ++a) {
      w.sample("pagi_exec_decisions_total",
               {{"kind", to_string(static_cast<RuleKind>(k))}, {"outcome", a == 1 ? "allowed" : "refused"}},
               decisions_[k][a].value());
    }
  }
  w.family("pagi_exec_executions_total", "Allowed executions, by isolation and how they ended.", "counter");
  for (std::size_t i = 0; i < isolation_count; ++i) {
    for (std::size_t e = 0; e < ending_count; ++e) {
      w.sample("pagi_exec_executions_total",
               {{"isolation", pagi_exec::to_string(isolations[i])}, {"outcome", pagi_exec::to_string(endings[e])}},
               executions_[i][e].value());
    }
  }
  w.family("pagi_exec_limits_hit_total", "Executions ended or hobbled by a limit, by limit.", "counter");
  for (std::size_t l = 0; l < limit_count; ++l) {
    w.sample("pagi_exec_limits_hit_total", {{"limit", pagi_exec::to_string(limits[l])}}, limits_hit_[l].value());
  }
  w.family("pagi_exec_execution_duration_seconds", "Wall-clock time of allowed executions, by isolation.", "histogram");
  for (std::size_t i = 0; i < isolation_count; ++i) {
    w.histogram("pagi_exec_execution_duration_seconds", {{"isolation", pagi_exec::to_string(isolations[i])}},
                *durations_[i]);
  }
  w.family("pagi_exec_sandbox_startup_seconds",
           "From the decision to the command running (admission, audit record, sandbox set-up, exec), by isolation.",
           "histogram");
  for (std::size_t i = 0; i < isolation_count; ++i) {
    w.histogram("pagi_exec_sandbox_startup_seconds", {{"isolation", pagi_exec::to_string(isolations[i])}},
                *startups_[i]);
  }
  w.family("pagi_exec_executions_running", "Executions holding an admission slot now.", "gauge");
  w.sample("pagi_exec_executions_running", {}, std::uint64_t{running});
  w.family("pagi_exec_audit_write_failures_total", "Audit records the audit log failed to store.", "counter");
  w.sample("pagi_exec_audit_write_failures_total", {}, audit_failures_.value());
  w.family("pagi_exec_policy_reloads_total", "Policy reloads (SIGHUP), by result.", "counter");
  w.sample("pagi_exec_policy_reloads_total", {{"result", "success"}}, reloads_succeeded_.value());
  w.sample("pagi_exec_policy_reloads_total", {{"result", "failure"}}, reloads_failed_.value());
  w.family("pagi_exec_egress_connections_total",
           "Connection attempts of egress runs through the proxy, by result (counted as each run ends).", "counter");
  w.sample("pagi_exec_egress_connections_total", {{"result", "allowed"}}, egress_allowed_.value());
  w.sample("pagi_exec_egress_connections_total", {{"result", "refused"}}, egress_refused_.value());
  w.family("pagi_exec_egress_bytes_total", "Bytes relayed for egress runs, by direction.", "counter");
  w.sample("pagi_exec_egress_bytes_total", {{"direction", "up"}}, egress_bytes_up_.value());
  w.sample("pagi_exec_egress_bytes_total", {{"direction", "down"}}, egress_bytes_down_.value());
  w.family("pagi_exec_policy_info", "The revision of the policy in effect (always 1).", "gauge");
  w.sample("pagi_exec_policy_info", {{"revision", policy_revision}}, std::uint64_t{1});
  render_process_stats(w, read_process_stats());
}

Metrics& server_metrics() {
  static Metrics metrics;
  return metrics;
}

}  // namespace tools_server
