// SPDX-License-Identifier: Apache-2.0
// The server's metrics: lock-free counters, gauges and fixed-bucket histograms indexed by fixed
// label sets, rendered in the Prometheus text exposition format (version 0.0.4).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// A count that only grows. Lock-free: one relaxed atomic add.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down. Lock-free.
class Gauge {
 public:
  void add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

/// Durations in fixed buckets (upper bounds in seconds, ascending; +Inf is implicit). observe()
/// is two relaxed atomic adds after a search of at most a few dozen bounds. A scrape may see a
/// sample in the sum before its bucket (no lock): Prometheus tolerates this.
class Histogram {
 public:
  explicit Histogram(std::span<const double> upper_bounds_s);
  void observe(std::chrono::microseconds duration) noexcept;

  [[nodiscard]] std::span<const double> upper_bounds_s() const noexcept { return bounds_s_; }
  /// Samples at or under each bound, then the total (the +Inf bucket): bounds + 1 numbers.
  [[nodiscard]] std::vector<std::uint64_t> cumulative_counts() const;
  [[nodiscard]] double sum_s() const noexcept;

 private:
  std::vector<double> bounds_s_;
  std::vector<std::int64_t> bounds_us_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<std::uint64_t> sum_us_{0};
};

/// A label's name and value. Every value comes from a fixed set in code.
using Label = std::pair<std::string_view, std::string_view>;

/// Writes the text exposition format: "# HELP", "# TYPE", then the samples of one family.
class TextWriter {
 public:
  explicit TextWriter(std::string& out) : out_(out) {}
  /// `type`: counter, gauge, histogram, untyped.
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);
  void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, std::int64_t value);
  /// The _bucket, _sum and _count samples of `histogram` with `labels` (le is added).
  void histogram(std::string_view name, std::initializer_list<Label> labels, const Histogram& histogram);

 private:
  void labels_and_value(std::initializer_list<Label> labels, std::string_view extra_name, std::string_view extra_value,
                        std::string_view value);
  std::string& out_;
};

/// A label value as the format writes it between quotes: \ " and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view value);
/// A double as the format writes it: "+Inf", "-Inf", "NaN", else the shortest exact text.
[[nodiscard]] std::string format_value(double value);

/// The RPCs that have a label of their own; calls of any other method count as "other".
enum class Rpc : std::uint8_t {
  request_execution, stream_execution, health_check, check_policy, list_executions, get_execution, other
};
inline constexpr std::size_t rpc_count = 7;
/// The method name ("RequestExecution"), "other" for other.
[[nodiscard]] std::string_view to_string(Rpc rpc) noexcept;
/// The Rpc of a full method name ("/tools.ToolExecutorService/RequestExecution"); other otherwise.
[[nodiscard]] Rpc rpc_from_method(std::string_view method) noexcept;

/// gRPC's status codes 0-16 (OK ... UNAUTHENTICATED); another number counts as UNKNOWN.
inline constexpr std::size_t status_code_count = 17;
/// "OK", "PERMISSION_DENIED", ...; UNKNOWN for a number outside 0-16.
[[nodiscard]] std::string_view status_code_name(int code) noexcept;

/// Decision::rule with every twin id, tool and argument removed: a bounded set.
enum class RuleKind : std::uint8_t {
  always_refused, default_deny, safe_mode, invalid_request, twin_deny, twin_allow, twin_allow_all, other
};
inline constexpr std::size_t rule_kind_count = 8;
/// "always_refused", "default_deny", "safe_mode", "invalid_request", "twins.deny", "twins.allow",
/// "twins.allow_all", "other".
[[nodiscard]] std::string_view to_string(RuleKind kind) noexcept;
/// The kind of `decision`'s rule, as the policy spells it (policy_decide.hpp): "always_refused[rm]",
/// "twins.<twin>.deny[<entry>]", "twins.<twin>.allow[<tool>]", "twins.<twin>.allow[*]",
/// "default_deny", "safe_mode", "invalid_request". Anything else is other.
[[nodiscard]] RuleKind rule_kind(const pagi_exec::Decision& decision) noexcept;

/// Every metric the server keeps. Recording is lock-free; render() reads without stopping anyone.
/// Thread-safe.
class Metrics {
 public:
  Metrics();

  /// A call of `rpc` began / ended with `code` (from the gRPC interceptor).
  void call_started(Rpc rpc) noexcept;
  void call_finished(Rpc rpc, int code) noexcept;
  /// An execution request's result (RequestExecution, StreamExecution): its decision, and for an
  /// allowed request how it ended, its duration, start-up time and the limit it hit. An error
  /// (nothing decided or run: admission, audit) counts nowhere here.
  void request_done(const pagi_exec::Result<pagi_exec::Outcome>& result) noexcept;
  /// The audit log failed to store one record.
  void audit_write_failed() noexcept;
  /// What Host::reload_policy() said: no notice (no policy file) counts nothing, an error notice
  /// a failure, anything else a success.
  void policy_reloaded(const pagi_exec::Notices& notices) noexcept;

  /// Every family, in the text format; `running` and `policy_revision` come from the host at
  /// scrape time.
  void render(std::string& out, std::uint32_t running, std::string_view policy_revision) const;

 private:
  static constexpr std::size_t isolation_count = 3;  // cwd, bwrap, native
  static constexpr std::size_t ending_count = 3;     // succeeded, failed, timed_out
  static constexpr std::size_t limit_count = 6;      // LimitHit without none

  std::array<std::array<Counter, status_code_count>, rpc_count> requests_;
  std::array<Gauge, rpc_count> in_flight_;
  std::array<std::array<Counter, 2>, rule_kind_count> decisions_;  // [kind][refused, allowed]
  std::array<std::array<Counter, ending_count>, isolation_count> executions_;
  std::array<Counter, limit_count> limits_hit_;
  std::array<std::unique_ptr<Histogram>, isolation_count> durations_;  // histograms hold atomics: not movable
  std::array<std::unique_ptr<Histogram>, isolation_count> startups_;
  Counter audit_failures_;
  Counter reloads_succeeded_, reloads_failed_;
  Counter egress_allowed_, egress_refused_, egress_bytes_up_, egress_bytes_down_;
};

/// The process's registry: one server, one set of metrics (as Prometheus client libraries keep a
/// default registry), so that each hook is one call.
[[nodiscard]] Metrics& server_metrics();

}  // namespace tools_server
