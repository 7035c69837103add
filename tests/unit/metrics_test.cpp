// SPDX-License-Identifier: Apache-2.0
// The metrics registry: the kind of every rule the policy spells, the text format, the hooks.
#include <doctest/doctest.h>

#include <string>

#include <pagi_exec/pagi_exec.hpp>

#include "metrics.hpp"

using namespace pagi_exec;
using tools_server::Metrics;
using tools_server::RuleKind;

namespace {

// The line of `text` that starts with `prefix` (a sample name and its labels), or "".
std::string line_of(const std::string& text, const std::string& prefix) {
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    const auto line = text.substr(at, end - at);
    if (line.starts_with(prefix + " ")) return line;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

Decision decide(const Policy& policy, std::string twin, std::string tool, std::vector<std::string> args = {}) {
  return policy.decide(Request{.tool = std::move(tool), .args = std::move(args), .twin_id = std::move(twin)});
}

}  // namespace

TEST_SUITE("metrics") {
  TEST_CASE("every rule the policy decides by maps to its kind, without the twin or the tool") {
    // Twin ids and entries with dots and brackets must not confuse the mapping.
    const auto policy = Policy::make({.twins = {{"a.deny[x", {.allow = {"echo", "command_exec"}, .deny = {"cat"}}},
                                                {"b.allow[y]", {.allow = {"*"}}}},
                                      .always_refused = {"rm"}});
    REQUIRE(policy);
    struct Row {
      Decision decision;
      RuleKind kind;
    };
    const Row rows[] = {
        {decide(*policy, "a.deny[x", "echo"), RuleKind::twin_allow},
        {decide(*policy, "b.allow[y]", "ls"), RuleKind::twin_allow_all},
        {decide(*policy, "a.deny[x", "cat"), RuleKind::twin_deny},
        {decide(*policy, "a.deny[x", "command_exec", {"cat /etc/hosts"}), RuleKind::twin_deny},
        {decide(*policy, "b.allow[y]", "rm", {"-rf", "/"}), RuleKind::always_refused},
        {decide(*policy, "nobody", "echo"), RuleKind::default_deny},
        {decide(*policy, "", "echo"), RuleKind::default_deny},
        {decide(*policy, "a.deny[x", "ls"), RuleKind::default_deny},
        {decide(*policy, "a.deny[x", ""), RuleKind::invalid_request},
        {Decision::invalid_request("too many arguments"), RuleKind::invalid_request},
    };
    for (const auto& row : rows) {
      CAPTURE(row.decision.rule);
      CHECK(tools_server::rule_kind(row.decision) == row.kind);
    }
    const auto safe = Policy::make({.twins = {{"t", {.allow = {"*", "command_exec"}}}}, .safe_mode = true});
    REQUIRE(safe);
    CHECK(tools_server::rule_kind(decide(*safe, "t", "command_exec", {"ls"})) == RuleKind::safe_mode);
    CHECK(tools_server::rule_kind(decide(*safe, "t", "echo")) == RuleKind::safe_mode);
  }

  TEST_CASE("a rule of no known shape is other") {
    for (const char* rule : {"", "authentication", "twins.t", "always_refused", "twins.t.allow[x"}) {
      CAPTURE(rule);
      CHECK(tools_server::rule_kind(Decision{.allowed = true, .rule = rule}) == RuleKind::other);
    }
    CHECK(tools_server::rule_kind(Decision{.allowed = false, .rule = "twins.t.allow[x]"}) == RuleKind::other);
    CHECK(tools_server::to_string(RuleKind::twin_allow_all) == "twins.allow_all");
  }

  TEST_CASE("method names outside the service count as other") {
    CHECK(tools_server::rpc_from_method("/tools.ToolExecutorService/RequestExecution") ==
          tools_server::Rpc::request_execution);
    CHECK(tools_server::rpc_from_method("/tools.ToolExecutorService/CheckPolicy") == tools_server::Rpc::check_policy);
    CHECK(tools_server::rpc_from_method("/tools.ToolExecutorService/Nope") == tools_server::Rpc::other);
    CHECK(tools_server::rpc_from_method("/evil\"}\n/RequestExecution") == tools_server::Rpc::other);
    CHECK(tools_server::status_code_name(7) == "PERMISSION_DENIED");
    CHECK(tools_server::status_code_name(99) == "UNKNOWN");
  }

  TEST_CASE("label values and numbers are written as the text format wants") {
    CHECK(tools_server::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(tools_server::format_value(0.25) == "0.25");
    CHECK(tools_server::format_value(1.0 / 0.0) == "+Inf");
    std::string out;
    tools_server::TextWriter writer(out);
    writer.family("x_total", "Help with \\ and\nnewline.", "counter");
    writer.sample("x_total", {{"a", "1"}, {"b", "q\""}}, std::uint64_t{3});
    CHECK(out == "# HELP x_total Help with \\\\ and\\nnewline.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\"} 3\n");
  }

  TEST_CASE("a histogram's buckets are cumulative, with +Inf, _sum and _count") {
    const double bounds[] = {0.001, 0.01};
    tools_server::Histogram histogram(bounds);
    histogram.observe(std::chrono::microseconds(1000));  // on a bound: counted under it
    histogram.observe(std::chrono::microseconds(5000));
    histogram.observe(std::chrono::seconds(3));
    std::string out;
    tools_server::TextWriter(out).histogram("h_seconds", {{"isolation", "cwd"}}, histogram);
    CHECK(out ==
          "h_seconds_bucket{isolation=\"cwd\",le=\"0.001\"} 1\n"
          "h_seconds_bucket{isolation=\"cwd\",le=\"0.01\"} 2\n"
          "h_seconds_bucket{isolation=\"cwd\",le=\"+Inf\"} 3\n"
          "h_seconds_sum{isolation=\"cwd\"} 3.006\n"
          "h_seconds_count{isolation=\"cwd\"} 3\n");
  }

  TEST_CASE("an execution's outcome moves the decision, execution, limit and histogram figures") {
    Metrics metrics;
    Outcome timed_out{.execution_id = "e1", .decision = {.allowed = true, .rule = "twins.secret-twin.allow[sleep]"},
                      .ran = true, .exit_code = exit_timeout, .timed_out = true, .limit_hit = LimitHit::timeout};
    timed_out.elapsed = std::chrono::milliseconds(1500);
    timed_out.startup = std::chrono::microseconds(700);
    timed_out.isolation = Isolation::native;
    timed_out.egress = EgressSummary{.allowed = 2, .refused = 3, .bytes_up = 10, .bytes_down = 2000};
    metrics.request_done(timed_out);
    metrics.request_done(Outcome{.decision = {.allowed = false, .rule = "always_refused[rm]"}});
    metrics.request_done(tl::unexpected(Error{.code = Errc::resource_exhausted}));
    metrics.call_started(tools_server::Rpc::health_check);
    metrics.call_started(tools_server::Rpc::request_execution);
    metrics.call_finished(tools_server::Rpc::request_execution, 7);
    metrics.audit_write_failed();
    metrics.policy_reloaded({});
    metrics.policy_reloaded({{NoticeLevel::info, "reloaded"}});
    metrics.policy_reloaded({{NoticeLevel::error, "NOT reloaded"}});
    std::string text;
    metrics.render(text, 2, "abc\"def");
    CHECK(line_of(text, "pagi_exec_decisions_total{kind=\"twins.allow\",outcome=\"allowed\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_decisions_total{kind=\"always_refused\",outcome=\"refused\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_executions_total{isolation=\"native\",outcome=\"timed_out\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_executions_total{isolation=\"cwd\",outcome=\"succeeded\"}").ends_with(" 0"));
    CHECK(line_of(text, "pagi_exec_limits_hit_total{limit=\"execution_timeout\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_execution_duration_seconds_count{isolation=\"native\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_execution_duration_seconds_sum{isolation=\"native\"}").ends_with(" 1.5"));
    CHECK(line_of(text, "pagi_exec_sandbox_startup_seconds_bucket{isolation=\"native\",le=\"0.0005\"}").ends_with(" 0"));
    CHECK(line_of(text, "pagi_exec_sandbox_startup_seconds_bucket{isolation=\"native\",le=\"0.001\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_requests_total{rpc=\"RequestExecution\",code=\"PERMISSION_DENIED\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_requests_in_flight{rpc=\"HealthCheck\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_requests_in_flight{rpc=\"RequestExecution\"}").ends_with(" 0"));
    CHECK(line_of(text, "pagi_exec_executions_running") == "pagi_exec_executions_running 2");
    CHECK(line_of(text, "pagi_exec_audit_write_failures_total") == "pagi_exec_audit_write_failures_total 1");
    CHECK(line_of(text, "pagi_exec_policy_reloads_total{result=\"success\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_policy_reloads_total{result=\"failure\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_policy_info{revision=\"abc\\\"def\"}").ends_with(" 1"));
    CHECK(line_of(text, "pagi_exec_egress_connections_total{result=\"allowed\"}").ends_with(" 2"));
    CHECK(line_of(text, "pagi_exec_egress_connections_total{result=\"refused\"}").ends_with(" 3"));
    CHECK(line_of(text, "pagi_exec_egress_bytes_total{direction=\"down\"}").ends_with(" 2000"));
    CHECK(text.find("secret-twin") == std::string::npos);
    CHECK(text.find("sleep") == std::string::npos);
    CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
    CHECK(text.find("process_open_fds ") != std::string::npos);
  }
}
