// SPDX-License-Identifier: Apache-2.0
// Codec of ListExecutions, GetExecution and StreamExecution.
#include "history_codec.hpp"

#include "codec.hpp"

#include <charconv>

namespace tools_server::codec {
namespace {

// A time the record does not have (zero) stays empty on the wire.
std::string rfc3339(std::chrono::system_clock::time_point time) {
  return time.time_since_epoch().count() == 0 ? std::string() : pagi_exec::to_rfc3339(time);
}

std::int64_t millis(std::chrono::microseconds us) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(us).count();
}

}  // namespace

tl::expected<pagi_exec::HistoryQuery, grpc::Status> from_proto(const tools::ListExecutionsRequest& message) {
  pagi_exec::HistoryQuery query{.twin_id = message.twin_id(), .job_id = message.job_id()};
  if (!message.outcome().empty()) {
    auto outcome = pagi_exec::history_outcome_from_string(message.outcome());
    if (!outcome) return tl::unexpected(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, outcome.error().message()));
    query.outcome = *outcome;
  }
  if (message.page_size() < 0) {
    return tl::unexpected(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative"));
  }
  query.page_size = message.page_size() == 0 ? 50 : static_cast<std::size_t>(message.page_size());
  const auto& token = message.page_token();
  if (!token.empty()) {
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), query.before_sequence);
    if (ec != std::errc{} || end != token.data() + token.size() || query.before_sequence == 0) {
      return tl::unexpected(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "page_token '" + token + "' is not one this server gave out"));
    }
  }
  return query;
}

void to_proto(const pagi_exec::HistoryPage& page, tools::ListExecutionsResponse& response) {
  for (const auto& record : page.records) *response.add_executions() = to_proto(record);
  if (page.next_before != 0) response.set_next_page_token(std::to_string(page.next_before));
}

tools::ExecutionRecord to_proto(const pagi_exec::ExecutionRecord& record) {
  tools::ExecutionRecord out;
  out.set_execution_id(record.execution_id);
  out.set_twin_id(record.twin_id);
  out.set_job_id(record.job_id);
  out.set_namespace_(record.ns);
  out.set_command(record.tool);
  for (const auto& arg : record.args) out.add_args(arg);
  out.set_arg_count(static_cast<std::uint32_t>(record.arg_count));
  out.set_args_truncated(record.args_truncated);
  out.set_node(record.node);
  out.set_allowed(record.allowed);
  out.set_reason(record.reason);
  out.set_policy_rule(record.rule);
  out.set_ran(record.ran);
  out.set_exit_code(record.exit_code);
  out.set_signal(record.signal);
  out.set_timed_out(record.timed_out);
  out.set_limit_hit(pagi_exec::to_string(record.limit_hit));
  if (record.ran) out.set_isolation(pagi_exec::to_string(record.isolation));
  out.set_message(record.message);
  for (const auto& line : record.out.lines) out.add_stdout_logs(line);
  for (const auto& line : record.err.lines) out.add_stderr_logs(line);
  out.set_output_dropped(record.output_dropped);
  out.set_stdout_truncated(record.out.truncated);
  out.set_stderr_truncated(record.err.truncated);
  out.set_started_at(rfc3339(record.started));
  out.set_finished_at(rfc3339(record.finished));
  if (record.egress) to_proto(*record.egress, *out.mutable_egress());
  return out;
}

namespace {
void set_limits(const pagi_exec::Limits& limits, pagi_exec::Isolation isolation, tools::ExecutionLimits& out) {
  out.set_timeout_ms(limits.timeout.count());
  if (isolation == pagi_exec::Isolation::native) {  // cgroup limits exist only there
    out.set_memory_bytes(limits.memory_bytes);
    out.set_max_processes(limits.max_processes);
  }
  out.set_cpu_time_s(limits.cpu_time.count());
  out.set_file_size_bytes(limits.file_size_bytes);
  out.set_output_bytes(limits.output.max_bytes);
  out.set_output_lines(limits.output.max_lines);
  out.set_workspace_bytes(limits.workspace_bytes);
}
}  // namespace

tools::ExecutionEvent started_event(const pagi_exec::Outcome& outcome, const pagi_exec::Limits& limits) {
  tools::ExecutionEvent event;
  auto& started = *event.mutable_started();
  started.set_execution_id(outcome.execution_id);
  started.set_isolation(pagi_exec::to_string(outcome.isolation));
  started.set_policy_rule(outcome.decision.rule);
  set_limits(limits, outcome.isolation, *started.mutable_limits());
  return event;
}

tools::PolicyDecision to_proto(const pagi_exec::Decision& decision, const pagi_exec::Limits& limits,
                               const std::string& revision, pagi_exec::Isolation isolation) {
  tools::PolicyDecision out;
  out.set_allowed(decision.allowed);
  out.set_reason(decision.reason);
  out.set_rule(decision.rule);
  if (decision.allowed) set_limits(limits, isolation, *out.mutable_limits());
  if (decision.allowed) {
    const auto network = pagi_exec::effective_network(decision.network, isolation);
    out.set_network(network != pagi_exec::NetworkAccess::none);
    out.set_network_mode(std::string(pagi_exec::to_string(network)));
    if (network == pagi_exec::NetworkAccess::egress) {
      for (const auto& pattern : decision.allow_domains) out.add_allow_domains(pattern.text());
      for (const auto& pattern : decision.deny_domains) out.add_deny_domains(pattern.text());
    }
  }
  for (const auto& note : decision.notes) out.add_notes(note);
  out.set_policy_revision(revision);
  return out;
}

tools::ExecutionEvent finished_event(const pagi_exec::Outcome& outcome) {
  tools::ExecutionEvent event;
  auto& done = *event.mutable_finished();
  done.set_execution_id(outcome.execution_id);
  done.set_allowed(outcome.decision.allowed);
  done.set_success(outcome.success());
  done.set_exit_code(outcome.exit_code);
  done.set_signal(outcome.signal);
  done.set_reason(outcome.message);  // a refusal's message is its reason
  done.set_policy_rule(outcome.decision.rule);
  done.set_timed_out(outcome.timed_out);
  done.set_limit_hit(pagi_exec::to_string(outcome.limit_hit));
  done.set_duration_ms(millis(outcome.elapsed));
  done.set_cpu_time_ms(millis(outcome.usage.cpu_time()));
  done.set_peak_memory_bytes(outcome.usage.peak_bytes());
  done.set_stdout_truncated(outcome.out.truncated);
  done.set_stderr_truncated(outcome.err.truncated);
  if (outcome.ran) done.set_isolation(pagi_exec::to_string(outcome.isolation));
  if (outcome.workspace) {
    done.set_workspace_bytes(outcome.workspace->bytes);
    done.set_workspace_quota_bytes(outcome.workspace->quota_bytes);
  }
  if (outcome.egress) to_proto(*outcome.egress, *done.mutable_egress());
  return event;
}

}  // namespace tools_server::codec
