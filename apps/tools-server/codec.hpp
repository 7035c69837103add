// SPDX-License-Identifier: Apache-2.0
// Codec: tools.proto messages <-> library values, and the one place errors become wire statuses.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include <pagi_exec/pagi_exec.hpp>

#include "tools.pb.h"

namespace tools_server::codec {

// The wire request becomes a library Request in request_decoder.hpp (decode), from its raw bytes.

/// The time left until an RPC deadline, as a Request::timeout_cap: nullopt when the deadline is
/// further than pagi_exec::max_timeout away (including "no deadline"), at least 1 ms otherwise.
[[nodiscard]] std::optional<std::chrono::milliseconds> timeout_cap(std::chrono::system_clock::time_point deadline,
                                                                   std::chrono::system_clock::time_point now);

/// Why an execution was stopped early, as the service knows it.
enum class StopCause : std::uint8_t {
  none,      ///< not stopped (or stopped by its own time limit)
  client,    ///< the client cancelled or its deadline passed
  shutdown,  ///< the server is shutting down
};

/// THE mapping of a run's result to the wire; fills `response` when the status is OK.
///  - a policy refusal: OK, success=false, exit_code=1, message=reason,
///    stderr_logs[0] = "Policy violation: <reason>", policy_rule;
///  - a command that ran (any exit code, signal, timeout, truncation): OK with in-band fields;
///    a timeout is exit_code 124 with message "execution_timeout";
///  - a call that cannot run as asked (Decision::invalid_request, or its tool's argument error):
///    OK, success=false, exit_code=2, message and stderr_logs[0] = the reason (no prefix);
///  - an execution cancelled early: CANCELLED (client) or UNAVAILABLE (shutdown);
///  - Errc::audit_unavailable: UNAVAILABLE; Errc::resource_exhausted: RESOURCE_EXHAUSTED; every
///    other Errc: INTERNAL; with the error message.
[[nodiscard]] grpc::Status to_proto(const pagi_exec::Result<pagi_exec::Outcome>& result, StopCause stop,
                                    tools::ExecutionResponse& response);

/// An error of the library as a status: Errc::invalid_request is INVALID_ARGUMENT, the rest
/// INTERNAL, with the error's message.
[[nodiscard]] grpc::Status to_status(const pagi_exec::Error& error);

/// The status of an execution stopped early: CANCELLED (client) or UNAVAILABLE (shutdown).
[[nodiscard]] grpc::Status cancelled_status(const pagi_exec::Outcome& outcome, StopCause stop);

/// What HealthCheck reports: the isolation asked for and the one in effect, and why they differ.
struct HealthReport {
  std::optional<pagi_exec::Isolation> requested;  ///< unset: auto, the strongest that works
  pagi_exec::Isolation effective = pagi_exec::Isolation::cwd;
  std::string isolation_reason;  ///< why `effective` is in effect ("auto: native works here")
  std::string fallback_reason;   ///< why `effective` differs from `requested`; empty when equal
  bool safe_mode = false;
  std::string sandbox_dir;
  std::chrono::milliseconds timeout{0};
  pagi_exec::Limits limits;
  std::shared_ptr<pagi_exec::AuditLog> audit;  ///< asked for its status at every HealthCheck; may be null
  std::string policy_revision{pagi_exec::builtin_revision};
  std::shared_ptr<const pagi_exec::Admission> admission;  ///< its limits and usage are reported; may be null
  std::vector<std::string> host_network_twins;  ///< twins whose runs share the host's network
  std::vector<pagi_exec::TwinWorkspace> workspaces;  ///< as last measured, over quota first (Executor::workspaces)
  std::string reload_error;  ///< why the last policy reload failed (the older policy is in effect); empty: none

  /// True when the requested isolation is not in effect, the audit log is failing, or the last
  /// policy reload failed: the server serves, but not as it was configured to. A twin over its
  /// workspace quota is not: that twin's writes are refused, everyone else is served as configured.
  [[nodiscard]] bool degraded() const {
    return (requested && *requested != effective) || (audit && !audit->status().healthy) || !reload_error.empty();
  }
};

/// HealthCheck's status and the first sentence of its message, as the original service answers
/// them (clients compare the status string).
inline constexpr const char* health_healthy = "healthy";
inline constexpr const char* health_degraded = "degraded";
inline constexpr const char* health_sentence = "Tool executor service is operational";

/// The twins whose executions share the host's network under `policy` with `isolation`: those
/// granted `network = true` (none in safe mode), or every twin of the policy in cwd isolation.
[[nodiscard]] std::vector<std::string> host_network_twins(const pagi_exec::Policy& policy, pagi_exec::Isolation isolation);

/// The warning about `twins` (non-empty) for the log and HealthCheck.
[[nodiscard]] std::string host_network_warning(const std::vector<std::string>& twins, pagi_exec::Isolation isolation);

/// status "healthy" (or "degraded", see HealthReport::degraded), version, and a message that
/// always starts with the original's sentence: "Tool executor service is operational", or when
/// degraded "Tool executor service is operational but degraded (<reasons>)"; then "; " and
/// describe(report).
[[nodiscard]] tools::HealthCheckResponse to_proto(const HealthReport& report);

/// The one-sentence summary of `report` used by HealthCheck and the start-up log line.
[[nodiscard]] std::string describe(const HealthReport& report);

}  // namespace tools_server::codec
