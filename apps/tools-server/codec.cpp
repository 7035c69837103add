// SPDX-License-Identifier: Apache-2.0
// Codec: proto <-> library values. Every decision about what a client sees is in to_proto().
#include "codec.hpp"

#include <cstdint>
#include <limits>

namespace tools_server::codec {
namespace {

constexpr const char* policy_violation_prefix = "Policy violation: ";

void add_lines(const std::vector<std::string>& lines, google::protobuf::RepeatedPtrField<std::string>& out) {
  out.Reserve(static_cast<int>(lines.size()));
  for (const auto& line : lines) out.Add()->assign(line);
}

// A refusal, in the exact shape existing clients of the seed service parse. The Outcome holds its
// exit code (1) and message (the reason); the wire adds the "Policy violation: " line.
void encode_refusal(const pagi_exec::Outcome& outcome, tools::ExecutionResponse& response) {
  response.set_success(false);
  response.set_exit_code(outcome.exit_code);
  response.set_message(outcome.message);
  response.add_stderr_logs(policy_violation_prefix + outcome.decision.reason);
  response.set_execution_id(outcome.execution_id);
  response.set_policy_rule(outcome.decision.rule);
  response.set_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(outcome.elapsed).count());
  response.set_isolation(pagi_exec::to_string(outcome.isolation));  // where it would have run
}

// An allowed request that reached its end (ran or not), or a call that cannot run as asked (exit
// 2, the reason in message and stderr_logs, no "Policy violation: "): everything is in-band, as
// the Outcome holds it (a timeout's 124 and "execution_timeout" included).
void encode_finished(const pagi_exec::Outcome& outcome, tools::ExecutionResponse& response) {
  response.set_success(outcome.success());
  response.set_exit_code(outcome.exit_code);
  add_lines(outcome.out.lines, *response.mutable_stdout_logs());
  add_lines(outcome.err.lines, *response.mutable_stderr_logs());
  response.set_message(outcome.message);
  response.set_execution_id(outcome.execution_id);
  response.set_stdout_truncated(outcome.out.truncated);
  response.set_stderr_truncated(outcome.err.truncated);
  response.set_signal(outcome.signal);
  response.set_timed_out(outcome.timed_out);
  response.set_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(outcome.elapsed).count());
  response.set_isolation(pagi_exec::to_string(outcome.isolation));  // also when it could not start
  response.set_policy_rule(outcome.decision.rule);
  response.set_limit_hit(pagi_exec::to_string(outcome.limit_hit));
  response.set_cpu_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(outcome.usage.cpu_time()).count());
  response.set_peak_memory_bytes(outcome.usage.peak_bytes());
  if (outcome.workspace) {
    response.set_workspace_bytes(outcome.workspace->bytes);
    response.set_workspace_quota_bytes(outcome.workspace->quota_bytes);
  }
  if (outcome.egress) to_proto(*outcome.egress, *response.mutable_egress());
}

}  // namespace

void to_proto(const pagi_exec::EgressSummary& summary, tools::EgressSummary& out) {
  out.set_connections_allowed(summary.allowed);
  out.set_connections_refused(summary.refused);
  out.set_bytes_up(summary.bytes_up);
  out.set_bytes_down(summary.bytes_down);
}

grpc::Status to_status(const pagi_exec::Error& error) {
  using pagi_exec::Errc;
  switch (error.code) {
    case Errc::invalid_request: return {grpc::StatusCode::INVALID_ARGUMENT, error.message()};
    case Errc::audit_unavailable: return {grpc::StatusCode::UNAVAILABLE, error.message()};
    case Errc::resource_exhausted: return {grpc::StatusCode::RESOURCE_EXHAUSTED, error.message()};
    case Errc::invalid_config:
    case Errc::sandbox_setup:
    case Errc::spawn_failed:
    case Errc::io:
    case Errc::internal:
      return {grpc::StatusCode::INTERNAL, std::string(pagi_exec::to_string(error.code)) + ": " + error.message()};
  }
  return {grpc::StatusCode::INTERNAL, error.message()};
}

grpc::Status cancelled_status(const pagi_exec::Outcome& outcome, StopCause stop) {
  if (stop == StopCause::shutdown) {
    return {grpc::StatusCode::UNAVAILABLE, "server shutting down: execution " + outcome.execution_id + " killed"};
  }
  return {grpc::StatusCode::CANCELLED, "execution " + outcome.execution_id + " cancelled: the call ended"};
}

std::optional<std::chrono::milliseconds> timeout_cap(std::chrono::system_clock::time_point deadline,
                                                     std::chrono::system_clock::time_point now) {
  // grpc reports "no deadline" as time_point::max(); subtracting `now` from it would overflow.
  if (deadline >= now + pagi_exec::max_timeout) return std::nullopt;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  return std::max(left, std::chrono::milliseconds(1));
}

grpc::Status to_proto(const pagi_exec::Result<pagi_exec::Outcome>& result, StopCause stop,
                      tools::ExecutionResponse& response) {
  if (!result) return to_status(result.error());
  const auto& outcome = *result;
  if (!outcome.decision.allowed && !outcome.decision.is_invalid_request()) {
    encode_refusal(outcome, response);
    return grpc::Status::OK;
  }
  if (outcome.cancelled) return cancelled_status(outcome, stop);
  encode_finished(outcome, response);
  return grpc::Status::OK;
}

tools::HealthCheckResponse to_proto(const pagi_exec::HealthReport& report) {
  tools::HealthCheckResponse response;
  response.set_status(pagi_exec::health_status(report));
  response.set_version(pagi_exec::version);
  response.set_message(pagi_exec::health_message(report));
  return response;
}

}  // namespace tools_server::codec
