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
}

// The twins over their workspace quota (all of them), else the largest workspace.
std::string describe_workspaces(const HealthReport& report) {
  const auto& all = report.workspaces;
  if (all.empty()) return {};
  const auto one = [](const pagi_exec::TwinWorkspace& w) {
    return w.twin_id + " " + pagi_exec::describe_size(w.usage.bytes) + " of " +
           (w.usage.quota_bytes == 0 ? std::string("no quota") : pagi_exec::describe_size(w.usage.quota_bytes));
  };
  if (!all.front().usage.over_quota()) return " largest_workspace=" + one(all.front());
  std::string text = " WORKSPACES OVER QUOTA:";
  for (const auto& w : all) {
    if (!w.usage.over_quota()) break;
    text += " " + one(w) + ";";
  }
  text.pop_back();
  return text;
}

// What HealthReport::degraded() found, in a few words each; the details follow in describe().
std::string degraded_reasons(const HealthReport& report) {
  std::vector<std::string> reasons;
  if (report.requested && *report.requested != report.effective) {
    reasons.push_back("isolation " + std::string(pagi_exec::to_string(*report.requested)) + " requested, " +
                      pagi_exec::to_string(report.effective) + " in effect");
  }
  if (report.audit) {
    if (const auto status = report.audit->status(); !status.healthy) reasons.push_back("audit log failing: " + status.last_error);
  }
  if (!report.reload_error.empty()) {
    reasons.push_back("last policy reload failed, the previous policy stays in effect: " + report.reload_error);
  }
  std::string text;
  for (const auto& reason : reasons) text += (text.empty() ? "" : "; ") + reason;
  return text;
}

}  // namespace

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

std::vector<std::string> host_network_twins(const pagi_exec::Policy& policy, pagi_exec::Isolation isolation) {
  std::vector<std::string> twins;
  for (const auto& [twin, grants] : policy.spec().twins) {
    if (isolation == pagi_exec::Isolation::cwd || (grants.network && !policy.safe_mode())) twins.push_back(twin);
  }
  return twins;
}

std::string host_network_warning(const std::vector<std::string>& twins, pagi_exec::Isolation isolation) {
  std::string names;
  for (const auto& twin : twins) names += (names.empty() ? "" : ",") + twin;
  const std::string why = isolation == pagi_exec::Isolation::cwd ? "isolation cwd shares it with every twin"
                                                                  : "policy network = true";
  return "WARNING: HOST NETWORK for twins " + names + " (" + why +
         "): their commands reach every service on the host's loopback (this server's port included), abstract "
         "unix sockets, the host's LAN and cloud metadata endpoints, as a host process would; see README, Isolation";
}

std::string describe(const HealthReport& report) {
  std::string text = "isolation=" + std::string(pagi_exec::to_string(report.effective)) +
                     " (" + report.isolation_reason + ")" +
                     " safe_mode=" + (report.safe_mode ? "true" : "false") + " policy=" + report.policy_revision +
                     " sandbox_dir=" + report.sandbox_dir +
                     " timeout_ms=" + std::to_string(report.timeout.count()) +
                     " cpu_limit_s=" + std::to_string(report.limits.cpu_time.count()) +
                     " file_size_limit_mb=" + std::to_string(report.limits.file_size_bytes >> 20);
  if (report.effective == pagi_exec::Isolation::native) {
    text += " memory_limit_mb=" + std::to_string(report.limits.memory_bytes >> 20) +
            " max_processes=" + std::to_string(report.limits.max_processes) +
            " tmpfs_size_mb=" + std::to_string(report.limits.tmpfs_bytes >> 20);
  }
  if (report.admission) {
    const auto& spec = report.admission->spec();
    const auto usage = report.admission->usage();
    text += " executions=" + std::to_string(usage.running) + "/" + std::to_string(spec.max_running) +
            " per_twin_limit=" + std::to_string(spec.max_running_per_twin) +
            " memory_reserved_mb=" + std::to_string(usage.memory_reserved_bytes >> 20) + "/" +
            (spec.memory_budget_bytes == 0 ? std::string("unlimited") : std::to_string(spec.memory_budget_bytes >> 20));
  }
  text += " workspace_quota_mb=" + std::to_string(report.limits.workspace_bytes >> 20) + describe_workspaces(report);
  if (report.audit) {
    const auto status = report.audit->status();
    text += " audit_log=" + report.audit->options().path.string() + (status.healthy ? "" : " AUDIT LOG FAILING: " + status.last_error);
  }
  if (!report.host_network_twins.empty()) {
    text += " " + host_network_warning(report.host_network_twins, report.effective);
  }
  if (report.requested && *report.requested != report.effective) {
    text += " WARNING: isolation '" + std::string(pagi_exec::to_string(*report.requested)) +
            "' was requested but is unavailable (" + report.fallback_reason +
            "); commands run with isolation '" + pagi_exec::to_string(report.effective) +
            "' and can see the host as the server does";
  }
  return text;
}

tools::HealthCheckResponse to_proto(const HealthReport& report) {
  tools::HealthCheckResponse response;
  response.set_status(report.degraded() ? health_degraded : health_healthy);
  response.set_version(pagi_exec::version);
  std::string headline = health_sentence;
  if (report.degraded()) headline += " but degraded (" + degraded_reasons(report) + ")";
  response.set_message(headline + "; " + describe(report));
  return response;
}

}  // namespace tools_server::codec
