// SPDX-License-Identifier: Apache-2.0
// Executor: decides a request with a Policy and runs it in a Sandbox, remembering it in History.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "pagi_exec/admission.hpp"
#include "pagi_exec/audit.hpp"
#include "pagi_exec/command.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/history.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/spawner.hpp"
#include "pagi_exec/tool_catalog.hpp"

namespace pagi_exec {

namespace detail {
class WorkspaceMeter;
}  // namespace detail
namespace sys {
class Janitor;
}  // namespace sys

/// Everything an Executor is made of. Only policy and sandbox are required.
struct ExecutorParts {
  Policy policy = Policy::seed_default();
  Sandbox sandbox;
  ToolCatalog catalog = ToolCatalog::seed_default();
  std::shared_ptr<const Spawner> spawner;  ///< null: make_process_spawner()
  std::shared_ptr<ExecutionStore> history;  ///< null: a new History (memory ring) of default capacity
  std::string node;                         ///< ExecutionRecord::node of every record (TOOLS_NODE_ID)
  std::shared_ptr<AuditSink> audit;        ///< null: no audit records
  bool audit_required = false;             ///< refuse to run what the audit sink cannot record
  std::shared_ptr<Admission> admission;    ///< null: no limit on executions running at once
  RequestLimits request_limits;            ///< what one request may carry (args, bytes)
};

/// Optional callbacks of one run, for callers that stream (all may be empty).
struct RunHooks {
  /// The request has been normalised and judged: the Command the policy decided on (the one
  /// that runs, if allowed) and the decision, before anything runs or is recorded. Not called
  /// for a request that could not be normalised.
  std::function<void(const Command&, const Decision&)> decided;
  /// An allowed request is about to run: the outcome so far (execution id, decision, isolation).
  std::function<void(const Outcome&)> started;
  /// Output as it is produced (see OutputSink): flow control, and false stops the run.
  OutputSink output;
};

/// Composes Policy + Sandbox + ToolCatalog with the services that run and remember requests.
/// An Executor is a handle, not a plain value: its copies, and the executors with_policy() makes,
/// share one History, audit sink, Spawner, Admission, clean-up worker and workspace meter (what
/// is known of the twins' workspaces against Limits::workspace_bytes); only Policy, Sandbox and
/// ToolCatalog are each copy's own. run() and check() are const and thread-safe: one Executor serves every gRPC
/// thread.
class Executor {
 public:
  /// Opens an executor on `parts.sandbox`: creates its root folder (mode 0711) if needed, checks
  /// that the uid commands run as can reach it, and in native isolation closes workspaces a
  /// previous run left open to their group. Errc::sandbox_setup when the folder cannot be created,
  /// is not a directory or cannot be reached; errors of make_native_spawner().
  [[nodiscard]] static Result<Executor> open(ExecutorParts parts);

  /// Decides without running anything or creating anything (a dry run): judge() with this
  /// executor's policy, catalog and request limits: the same Decision run() makes.
  [[nodiscard]] Decision check(const Request& request) const;

  /// The limits a run decided by `decision` gets: the sandbox's, each lowered to the policy's
  /// per-twin value where that is lower (a twin's limits never raise the server's), and the time
  /// limit capped by `timeout_cap` (a caller's deadline; never raised).
  [[nodiscard]] Limits limits_for(const Decision& decision,
                                  std::optional<std::chrono::milliseconds> timeout_cap = std::nullopt) const;

  /// Decides, and if allowed runs the request and waits for it. A refusal, a non-zero exit and a
  /// timeout are Outcomes, not errors. Every request, refused or not, is added to history().
  /// `stop` ends the execution early (its process tree is killed; Outcome::cancelled).
  /// With an audit sink, the decision is recorded before anything runs and the outcome after.
  /// A call that cannot run as asked (Decision::invalid_request: a NUL byte or more than
  /// request_limits, command_exec without a line, file_write without a path and content) is an
  /// Outcome too: not run, exit_code exit_usage (2), the reason as message and the one stderr
  /// line; recorded and audited like a refusal. So is an argument problem the tool finds only
  /// while running (file_write's target is a folder), with the decision that allowed it.
  /// An allowed request runs only when the admission grants it a slot; otherwise it ends at once
  /// with Errc::resource_exhausted, and is neither recorded in history() nor audited (it was
  /// decided, but nothing was attempted). Refusals never need a slot.
  /// Errors: Errc::resource_exhausted, Errc::sandbox_setup, Errc::spawn_failed, Errc::io,
  /// Errc::audit_unavailable (required audit failed to record the decision: nothing ran).
  [[nodiscard]] Result<Outcome> run(const Request& request, std::stop_token stop = {},
                                    const RunHooks& hooks = {}) const;

  /// What refuse_then() calls with its answer.
  using Answered = std::function<void(Result<Outcome>)>;
  /// run() for a request that will not run (refused, or Decision::invalid_request), without
  /// waiting for the history: audited as run() does it, then recorded with
  /// ExecutionStore::record_then, and `done` gets what run() would return once the record is
  /// kept, before this returns or later on the history's own thread (so `done` must not
  /// block). A server answers refusals this way so that no thread waits for a durable history's
  /// commit per call. Returns false, having done nothing, when the request is allowed: run() it.
  bool refuse_then(const Request& request, Answered done) const;

  /// The twins' workspaces as last measured (twins whose workspace has a quota and was used
  /// since start): over quota first, then largest first. Never touches the disk. Thread-safe.
  [[nodiscard]] std::vector<TwinWorkspace> workspaces() const;

  /// Blocks until the clean-up run() leaves for after its response (reaping processes,
  /// recycling cgroups, removing execution folders) has finished, for every execution so far of
  /// this executor and its copies (Spawner::wait_for_cleanup, then the folders). Thread-safe.
  void wait_for_cleanup() const;

  [[nodiscard]] const Policy& policy() const noexcept { return parts_.policy; }
  [[nodiscard]] const Sandbox& sandbox() const noexcept { return parts_.sandbox; }
  [[nodiscard]] const ToolCatalog& catalog() const noexcept { return parts_.catalog; }
  /// Where every request is recorded. A record it cannot store is counted in its health(), and
  /// the request is answered all the same.
  [[nodiscard]] const ExecutionStore& history() const noexcept { return *parts_.history; }
  [[nodiscard]] const std::string& node() const noexcept { return parts_.node; }

  /// The same executor (sharing its history, audit, spawner, admission and workspace meter) with
  /// another policy: the hot-reload seam.
  [[nodiscard]] Executor with_policy(Policy policy) const {
    auto parts = parts_;
    parts.policy = std::move(policy);
    return Executor(std::move(parts), workspaces_, cleanup_);
  }
  /// The same executor with another policy and tool catalog (a reloaded policy file).
  [[nodiscard]] Executor with_policy(Policy policy, ToolCatalog catalog) const {
    auto parts = parts_;
    parts.policy = std::move(policy);
    parts.catalog = std::move(catalog);
    return Executor(std::move(parts), workspaces_, cleanup_);
  }

 private:
  Executor(ExecutorParts parts, std::shared_ptr<detail::WorkspaceMeter> workspaces,
           std::shared_ptr<sys::Janitor> cleanup)
      : parts_(std::move(parts)), workspaces_(std::move(workspaces)), cleanup_(std::move(cleanup)) {}
  // A slot from the admission for an allowed request (none needed: nullopt).
  [[nodiscard]] Result<std::optional<Admission::Slot>> admit(const Request& request, const Decision& decision) const;
  // Records the decision in the audit log; a failure matters only when the audit is required
  // (Errc::audit_unavailable, and outcome.message says why nothing ran).
  [[nodiscard]] Result<void> audit_decision(const Request& request, Outcome& outcome) const;
  // A new execution's outcome: its id, isolation and policy revision.
  [[nodiscard]] Outcome fresh_outcome() const;
  // The history's record of `outcome`.
  [[nodiscard]] ExecutionRecord record_of(const Request& request, const Outcome& outcome,
                                          std::chrono::system_clock::time_point started) const;
  // Adds `outcome` to the history, and hands it back.
  Outcome remember(const Request& request, Outcome outcome, std::chrono::system_clock::time_point started) const;
  // `decided`: when the decision was made, which Outcome::startup counts from.
  [[nodiscard]] Result<Outcome> run_allowed(const Command& command, const Request& request, Outcome outcome,
                                            std::stop_token stop, const RunHooks& hooks,
                                            std::chrono::steady_clock::time_point decided) const;
  [[nodiscard]] Result<Outcome> run_command(const Command& command, const Request& request, Outcome outcome,
                                            std::stop_token stop, const RunHooks& hooks,
                                            std::chrono::steady_clock::time_point decided) const;
  ExecutorParts parts_;
  std::shared_ptr<detail::WorkspaceMeter> workspaces_;
  std::shared_ptr<sys::Janitor> cleanup_;  // removes execution folders after the response; shared by copies
};

}  // namespace pagi_exec
