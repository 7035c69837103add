// SPDX-License-Identifier: Apache-2.0
// Host: start-up as a checklist of library calls, then the health report and the reloads.
#include "pagi_exec/host.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "pagi_exec/host_policy.hpp"
#include "pagi_exec/host_sandbox.hpp"
#include "sys/cgroup_tuning.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec {
namespace {

// A start-up failure, named by the setting that caused it as the server spells it.
auto in_setting(const std::string& setting) {
  return [setting](const Error& error) { return Error::make(error.code, setting + ": " + error.message()); };
}

// The required isolation does not work: the sentence names what was asked for.
Error isolation_refused(const HostSettings& settings, const Error& why) {
  const auto asked = settings.isolation ? "'" + std::string(to_string(*settings.isolation)) + "' does not work here ("
                                        : std::string("'auto' found no isolation that works here (");
  return Error::make(Errc::sandbox_setup, "TOOLS_ISOLATION / --isolation: " + asked + why.message() +
                                              ") and TOOLS_REQUIRE_ISOLATION / --require-isolation is set");
}

// Asked for explicitly, so a failure stops the start rather than passing unnoticed.
Result<void> tune_cgroups(const HostSettings& settings, Notices& notices) {
  if (!settings.favor_cgroup_moves) return {};
  return sys::favor_cgroup_moves()
      .map([&] {
        notices.push_back({NoticeLevel::info, "TOOLS_CGROUP_FAVORDYNMODS: cgroup2 favordynmods is on (kernel-wide): "
                                              "a run joins its cgroup without waiting for an RCU grace period"});
      })
      .map_error(in_setting("TOOLS_CGROUP_FAVORDYNMODS / --cgroup-favordynmods"));
}

Result<OpenedSandbox> open_named_sandbox(const HostSettings& settings) {
  return open_sandbox(settings).map_error([&](const Error& error) {
    return error.code == Errc::sandbox_setup ? isolation_refused(settings, error) : in_setting("sandbox")(error);
  });
}

Result<std::shared_ptr<AuditLog>> open_audit(const HostSettings& settings, const std::string& node) {
  if (settings.audit.path.empty()) return std::shared_ptr<AuditLog>();
  auto options = settings.audit;
  options.node = node;  // every audit record names the node
  return AuditLog::open(options).map_error(in_setting("TOOLS_AUDIT_LOG / --audit-log"));
}

// The configured limits, or the defaults: a quarter of the total per twin; half the host's
// memory, never less than one execution's limit.
Result<std::shared_ptr<Admission>> make_admission(const HostSettings& settings, Notices& notices) {
  const auto memory_limit = settings.sandbox.limits.memory_bytes;
  std::uint64_t budget = settings.memory_budget_bytes.value_or(host_memory_bytes() / 2);
  if (!settings.memory_budget_bytes && budget != 0) budget = std::max(budget, memory_limit);
  auto admission = Admission::make(AdmissionSpec{
      .max_running = settings.max_concurrency,
      .max_running_per_twin = settings.max_concurrency_per_twin.value_or(default_per_twin_limit(settings.max_concurrency)),
      .memory_budget_bytes = budget,
  });
  if (admission && budget != 0 && memory_limit == 0) {
    notices.push_back({NoticeLevel::warn, "TOOLS_MEMORY_LIMIT_MB=0: an execution without a memory limit reserves the "
                                          "whole memory budget, so such executions run one at a time; set a memory "
                                          "limit, or TOOLS_MEMORY_BUDGET_MB=0"});
  }
  return admission.map_error(in_setting("TOOLS_MAX_CONCURRENCY"));
}

// Native runs each hold a uid of the pool: fewer uids than slots refuse the runs beyond them.
void check_uid_pool(const HostSettings& settings, Isolation effective, Notices& notices) {
  const auto& ids = settings.sandbox.native_ids;
  if (effective != Isolation::native || ids.count == 0 || ids.count - 1 >= settings.max_concurrency) return;
  notices.push_back({NoticeLevel::warn, "TOOLS_UID_POOL holds " + std::to_string(ids.count - 1) +
                                            " run uids, fewer than TOOLS_MAX_CONCURRENCY (" +
                                            std::to_string(settings.max_concurrency) +
                                            "): native runs beyond that many at once are refused"});
}

// The facts of the report fixed at start-up; health() adds what a reload or a run changes (the
// policy's safe mode, revision and network twins, the workspaces, the last reload's failure).
HealthReport started_report(const HostSettings& settings, const OpenedSandbox& opened, std::shared_ptr<AuditLog> audit,
                            std::shared_ptr<const Admission> admission) {
  return HealthReport{
      .requested = settings.isolation,
      .effective = opened.sandbox.isolation(),
      .isolation_reason = opened.reason.empty() ? "requested by TOOLS_ISOLATION" : opened.reason,
      .fallback_reason = opened.fallback,
      .safe_mode = false,
      .sandbox_dir = settings.sandbox.root_dir.string(),
      .limits = opened.sandbox.limits(),
      .audit = std::move(audit),
      .policy_revision = {},
      .admission = std::move(admission),
      .host_network_twins = {},
      .workspaces = {},
      .reload_error = {},
  };
}

}  // namespace

Result<std::unique_ptr<Host>> Host::start(const HostSettings& settings, Notices& notices, const AuditSinkFor& sink_for,
                                          NoticeSink later) {
  // What may run, then where it runs (probed once: a fallback is loud), then who commands are.
  auto policy = load_host_policy(settings).map_error(in_setting("TOOLS_POLICY_FILE / --policy"));
  if (!policy) return error_of(policy);
  if (auto tuned = tune_cgroups(settings, notices); !tuned) return error_of(tuned);
  auto opened = open_named_sandbox(settings);
  if (!opened) return error_of(opened);
  notices.insert(notices.end(), opened->notices.begin(), opened->notices.end());
  const auto effective = opened->sandbox.isolation();
  const auto identity = command_identity_notices(settings, effective, ::geteuid());
  notices.insert(notices.end(), identity.begin(), identity.end());
  check_uid_pool(settings, effective, notices);
  // What records the executions and how many run at once, then the executor over all of it.
  auto node = node_id_or_host_name(settings.node_id).map_error(in_setting("TOOLS_NODE_ID / --node-id"));
  if (!node) return error_of(node);
  auto audit = open_audit(settings, *node);
  if (!audit) return error_of(audit);
  auto admission = make_admission(settings, notices);
  if (!admission) return error_of(admission);
  auto history =
      open_execution_store(settings.history_store_settings(), std::move(later)).map_error(in_setting("TOOLS_HISTORY / --history"));
  if (!history) return error_of(history);
  std::shared_ptr<AuditSink> sink;
  if (*audit) sink = sink_for ? sink_for(*audit) : *audit;
  auto executor = Executor::open(ExecutorParts{
      .policy = policy->policy,
      .sandbox = opened->sandbox,
      .catalog = policy->catalog,
      .spawner = nullptr,
      .history = *history,
      .node = *node,
      .audit = sink,
      .audit_required = settings.audit.required,
      .admission = *admission,
      .request_limits = settings.request_limits,
  });
  if (!executor) return tl::unexpected(in_setting("SANDBOX_DIR / --sandbox-dir")(executor.error()));
  auto health = started_report(settings, *opened, *audit, *admission);
  health.history = *history;
  return std::unique_ptr<Host>(new Host(settings, std::move(*executor), std::move(health), *audit, sink));
}

HealthReport Host::health() const {
  auto report = started_;
  const auto executor = executor_.current();
  report.safe_mode = executor->policy().safe_mode();
  report.policy_revision = executor->policy().revision();
  report.host_network_twins = host_network_twins(executor->policy(), executor->sandbox().isolation());
  report.workspaces = executor->workspaces();
  // Removed or made read-only while we run: every run would fail to make its folder.
  if (const int err = sys::writable_folder_error(report.sandbox_dir); err != 0) {
    report.sandbox_dir_error = "sandbox dir " + report.sandbox_dir + ": " + std::strerror(err);
  }
  std::lock_guard lock(reload_mutex_);
  report.reload_error = reload_error_;
  return report;
}

Notices Host::host_network_notices() const {
  const auto executor = executor_.current();
  const auto isolation = executor->sandbox().isolation();
  const auto twins = host_network_twins(executor->policy(), isolation);
  Notices notices;
  if (!twins.empty()) notices.push_back({NoticeLevel::warn, "!!! " + host_network_warning(twins, isolation)});
  if (isolation == Isolation::bwrap) {
    std::string egress;
    for (const auto& [twin, grants] : executor->policy().spec().twins) {
      if (grants.network == NetworkAccess::egress && !executor->policy().safe_mode()) egress += (egress.empty() ? "" : ",") + twin;
    }
    if (!egress.empty()) {
      notices.push_back({NoticeLevel::warn, "twins " + egress + " have network = \"egress\", which needs isolation native "
                                            "(the proxy listens in each run's own network namespace): under bwrap their "
                                            "runs have no network at all"});
    }
  }
  return notices;
}

Notices Host::reload_policy(std::string_view cause) {
  if (settings_.policy_file.empty()) return {};
  auto file = load_host_policy(settings_).map_error(in_setting("TOOLS_POLICY_FILE / --policy"));
  if (!file) {
    const auto why = file.error().message();
    std::lock_guard lock(reload_mutex_);
    reload_error_ = why;  // health() says degraded until a reload succeeds
    return {{NoticeLevel::error, std::string(cause) + ": policy NOT reloaded, the old one stays in effect: " + why}};
  }
  const auto revision = file->policy.revision();
  const bool safe = file->policy.safe_mode();
  {
    // One reload at a time: a second SIGHUP must not swap in a policy over an older snapshot.
    std::lock_guard lock(reload_mutex_);
    executor_.replace(executor_.current()->with_policy(std::move(file->policy), std::move(file->catalog)));
    reload_error_.clear();
  }
  Notices notices{{NoticeLevel::info, std::string(cause) + ": policy reloaded from " + settings_.policy_file.string() +
                                          " (revision " + revision + ", safe_mode=" + (safe ? "true" : "false") + ")"}};
  const auto network = host_network_notices();
  notices.insert(notices.end(), network.begin(), network.end());
  return notices;
}

Notices Host::reopen_audit() const {
  if (!audit_) return {};
  if (auto reopened = audit_->reopen(); !reopened) {
    return {{NoticeLevel::error, "SIGHUP: cannot reopen the audit log: " + reopened.error().message()}};
  }
  return {{NoticeLevel::info, "SIGHUP: audit log reopened"}};
}

}  // namespace pagi_exec
