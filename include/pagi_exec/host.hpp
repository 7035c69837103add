// SPDX-License-Identifier: Apache-2.0
// Host: the library objects of a long-running host (the gRPC server), made once from its settings.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "pagi_exec/admission.hpp"
#include "pagi_exec/audit.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/executor.hpp"
#include "pagi_exec/health.hpp"
#include "pagi_exec/history.hpp"
#include "pagi_exec/host_settings.hpp"
#include "pagi_exec/notice.hpp"
#include "pagi_exec/snapshot.hpp"

namespace pagi_exec {

/// Wraps the audit log a host opened into the sink executions write to (e.g. one that reports
/// failures in the host's log). Empty: executions write to the log itself.
using AuditSinkFor = std::function<std::shared_ptr<AuditSink>(std::shared_ptr<AuditLog>)>;

/// Policy, sandbox, audit log, admission and executor of a host, with the health rules and the
/// policy reload. Each request takes executor() once and runs on that snapshot. Thread-safe;
/// neither copyable nor movable (share it by reference or pointer).
class Host {
 public:
  /// Loads the policy (load_host_policy), opens the sandbox (open_sandbox), the audit log and the
  /// admission (defaults: a quarter of max_concurrency per twin; half the host's memory, never
  /// less than one execution's limit) and makes the executor (creating the workspace root).
  /// `notices` receives what the operator should read, in order, also when the start fails.
  /// Errors (Errc::invalid_config or Errc::sandbox_setup) name the setting that caused them, as
  /// the server's variable and flag: "TOOLS_POLICY_FILE / --policy: <file>:3:1: ...".
  /// `later` hears what happens after the start (the history store gone away, back, records it
  /// dropped), from the store's own thread.
  [[nodiscard]] static Result<std::unique_ptr<Host>> start(const HostSettings& settings, Notices& notices,
                                                           const AuditSinkFor& sink_for = {},
                                                           NoticeSink later = {});

  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  /// The executor in effect: hold it for the whole request.
  [[nodiscard]] std::shared_ptr<const Executor> executor() const { return executor_.current(); }
  /// What the executions write their audit records to; null without an audit log.
  [[nodiscard]] const std::shared_ptr<AuditSink>& audit_sink() const noexcept { return audit_sink_; }
  [[nodiscard]] const HostSettings& settings() const noexcept { return settings_; }

  /// The report as of now: the start-up facts plus the policy in effect, the workspaces and the
  /// last reload's failure.
  [[nodiscard]] HealthReport health() const;

  /// The warning naming every twin whose executions share the host's network, and under bwrap the
  /// one naming egress twins (which then have no network); none when neither applies.
  [[nodiscard]] Notices host_network_notices() const;

  /// Reload (SIGHUP): loads the policy file again and swaps it in (running executions keep the
  /// policy they started under); a broken file keeps the old policy, and health() says degraded
  /// until a reload succeeds. Without a policy file, nothing to do. `cause` starts each notice
  /// ("SIGHUP: policy reloaded from ...", "policy file changed: ...").
  [[nodiscard]] Notices reload_policy(std::string_view cause = "SIGHUP");

  /// Reload (SIGHUP): reopens the audit log (logrotate's postrotate); nothing without one.
  [[nodiscard]] Notices reopen_audit() const;

 private:
  Host(HostSettings settings, Executor executor, HealthReport health, std::shared_ptr<AuditLog> audit,
       std::shared_ptr<AuditSink> audit_sink)
      : settings_(std::move(settings)), executor_(std::move(executor)), started_(std::move(health)),
        audit_(std::move(audit)), audit_sink_(std::move(audit_sink)) {}

  HostSettings settings_;
  Snapshot<Executor> executor_;
  HealthReport started_;  // the facts fixed at start-up
  std::shared_ptr<AuditLog> audit_;
  std::shared_ptr<AuditSink> audit_sink_;
  mutable std::mutex reload_mutex_;
  std::string reload_error_;  // guarded by reload_mutex_
};

/// Whether a caller who proved `proven_twin` (nullopt: no authentication) may see `record` in
/// the history: every record without authentication, its own twin's only with it. Another
/// twin's record must look as if it did not exist.
[[nodiscard]] inline bool may_see(const ExecutionRecord& record, const std::optional<std::string>& proven_twin) {
  return !proven_twin || record.twin_id == *proven_twin;
}

}  // namespace pagi_exec
