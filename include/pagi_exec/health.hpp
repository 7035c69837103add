// SPDX-License-Identifier: Apache-2.0
// HealthReport: what a host reports about itself, and the rules that say when it is degraded.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pagi_exec/admission.hpp"
#include "pagi_exec/audit.hpp"
#include "pagi_exec/execution_store.hpp"
#include "pagi_exec/notice.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// What a host reports (HealthCheck, the start-up line): the isolation asked for and the one in
/// effect and why they differ, the policy, limits, audit log, admission and workspaces.
struct HealthReport {
  std::optional<Isolation> requested;  ///< unset: auto, the strongest that works
  Isolation effective = Isolation::cwd;
  std::string isolation_reason;  ///< why `effective` is in effect ("auto: native works here")
  std::string fallback_reason;   ///< why `effective` differs from `requested`; empty when equal
  bool safe_mode = false;
  std::string sandbox_dir;
  Limits limits;
  std::shared_ptr<AuditLog> audit;  ///< asked for its status at every report; may be null
  std::string policy_revision{builtin_revision};
  std::shared_ptr<const Admission> admission;  ///< its limits and usage are reported; may be null
  std::vector<std::string> host_network_twins;  ///< twins whose runs share the host's network
  std::vector<TwinWorkspace> workspaces;  ///< as last measured, over quota first (Executor::workspaces)
  std::string reload_error;  ///< why the last policy reload failed (the older policy is in effect); empty: none
  std::shared_ptr<const ExecutionStore> history;  ///< asked for its health at every report; may be null
  std::string sandbox_dir_error;  ///< why no workspace can be made in `sandbox_dir` now (removed,
                                  ///< read-only); empty: none

  /// True when the requested isolation is not in effect, the audit log or the execution store is
  /// failing, the last policy reload failed, or the sandbox dir cannot hold workspaces: the host
  /// serves, but not as it was configured to. A twin over its workspace quota is not: that twin's
  /// writes are refused, everyone else is served as configured.
  [[nodiscard]] bool degraded() const {
    return (requested && *requested != effective) || (audit && !audit->status().healthy) ||
           (history && !history->health().healthy) || !reload_error.empty() || !sandbox_dir_error.empty();
  }
};

/// The status word and the first sentence of a health message, as the original service answers
/// them (clients compare the status string).
inline constexpr const char* health_healthy = "healthy";
inline constexpr const char* health_degraded = "degraded";
inline constexpr const char* health_sentence = "Tool executor service is operational";

/// "healthy" or "degraded" (see HealthReport::degraded).
[[nodiscard]] const char* health_status(const HealthReport& report);

/// The whole health message: the original's sentence, or when degraded "Tool executor service is
/// operational but degraded (<reasons>)"; then "; " and describe(report).
[[nodiscard]] std::string health_message(const HealthReport& report);

/// The one-sentence summary of `report` used by the health message and the start-up log line.
[[nodiscard]] std::string describe(const HealthReport& report);

/// The isolation in effect and why (info), and a loud warning when it is cwd by choice (a
/// fallback to cwd was warned about when it happened), for the start-up log.
[[nodiscard]] Notices isolation_notices(const HealthReport& report);

/// The twins whose executions share the host's network under `policy` with `isolation`: those
/// granted `network = "host"` (none in safe mode), or every twin of the policy in cwd isolation.
[[nodiscard]] std::vector<std::string> host_network_twins(const Policy& policy, Isolation isolation);

/// The warning about `twins` (non-empty) for the log and the health message.
[[nodiscard]] std::string host_network_warning(const std::vector<std::string>& twins, Isolation isolation);

}  // namespace pagi_exec
