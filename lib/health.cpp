// SPDX-License-Identifier: Apache-2.0
// The health rules: when a host is degraded, and how its report reads.
#include "pagi_exec/health.hpp"

namespace pagi_exec {
namespace {

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20); }

// The twins over their workspace quota (all of them), else the largest workspace.
std::string describe_workspaces(const HealthReport& report) {
  const auto& all = report.workspaces;
  if (all.empty()) return {};
  const auto one = [](const TwinWorkspace& w) {
    return w.twin_id + " " + describe_size(w.usage.bytes) + " of " +
           (w.usage.quota_bytes == 0 ? std::string("no quota") : describe_size(w.usage.quota_bytes));
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
    reasons.push_back("isolation " + std::string(to_string(*report.requested)) + " requested, " +
                      to_string(report.effective) + " in effect");
  }
  if (report.audit) {
    if (const auto status = report.audit->status(); !status.healthy) reasons.push_back("audit log failing: " + status.last_error);
  }
  if (report.history) {
    if (const auto store = report.history->health(); !store.healthy) {
      reasons.push_back("execution history failing (" + std::to_string(store.failed_writes) + " records not stored" +
                        (report.audit ? ", the audit log has them" : "") + "): " + store.detail);
    }
  }
  if (!report.reload_error.empty()) {
    reasons.push_back("last policy reload failed, the previous policy stays in effect: " + report.reload_error);
  }
  if (!report.sandbox_dir_error.empty()) reasons.push_back("no run can start: " + report.sandbox_dir_error);
  std::string text;
  for (const auto& reason : reasons) text += (text.empty() ? "" : "; ") + reason;
  return text;
}

std::string describe_admission(const Admission& admission) {
  const auto& spec = admission.spec();
  const auto usage = admission.usage();
  return " executions=" + std::to_string(usage.running) + "/" + std::to_string(spec.max_running) +
         " per_twin_limit=" + std::to_string(spec.max_running_per_twin) +
         " memory_reserved_mb=" + mib(usage.memory_reserved_bytes) + "/" +
         (spec.memory_budget_bytes == 0 ? std::string("unlimited") : mib(spec.memory_budget_bytes));
}

}  // namespace

const char* health_status(const HealthReport& report) { return report.degraded() ? health_degraded : health_healthy; }

std::string health_message(const HealthReport& report) {
  std::string headline = health_sentence;
  if (report.degraded()) headline += " but degraded (" + degraded_reasons(report) + ")";
  return headline + "; " + describe(report);
}

std::string describe(const HealthReport& report) {
  const auto& limits = report.limits;
  std::string text = "isolation=" + std::string(to_string(report.effective)) + " (" + report.isolation_reason + ")" +
                     " safe_mode=" + (report.safe_mode ? "true" : "false") + " policy=" + report.policy_revision +
                     " sandbox_dir=" + report.sandbox_dir + " timeout_ms=" + std::to_string(limits.timeout.count()) +
                     " cpu_limit_s=" + std::to_string(limits.cpu_time.count()) +
                     " file_size_limit_mb=" + mib(limits.file_size_bytes);
  if (report.effective == Isolation::native) {
    text += " memory_limit_mb=" + mib(limits.memory_bytes) + " max_processes=" + std::to_string(limits.max_processes) +
            " tmpfs_size_mb=" + mib(limits.tmpfs_bytes);
  }
  if (report.admission) text += describe_admission(*report.admission);
  text += " workspace_quota_mb=" + mib(limits.workspace_bytes) + describe_workspaces(report);
  if (report.audit) {
    const auto status = report.audit->status();
    text += " audit_log=" + report.audit->options().path.string() + (status.healthy ? "" : " AUDIT LOG FAILING: " + status.last_error);
  }
  if (!report.host_network_twins.empty()) text += " " + host_network_warning(report.host_network_twins, report.effective);
  if (report.requested && *report.requested != report.effective) {
    text += " WARNING: isolation '" + std::string(to_string(*report.requested)) + "' was requested but is unavailable (" +
            report.fallback_reason + "); commands run with isolation '" + to_string(report.effective) +
            "' and can see the host as the server does";
  }
  return text;
}

Notices isolation_notices(const HealthReport& report) {
  Notices notices{{NoticeLevel::info, "isolation " + std::string(to_string(report.effective)) + ": " + report.isolation_reason}};
  if (report.effective == Isolation::cwd && report.fallback_reason.empty()) {
    notices.push_back({NoticeLevel::warn, "!!! isolation 'cwd': commands see and can change the host as the server's "
                                          "user does; run as root or enable user namespaces for native, or install "
                                          "bubblewrap"});
  }
  return notices;
}

std::vector<std::string> host_network_twins(const Policy& policy, Isolation isolation) {
  std::vector<std::string> twins;
  for (const auto& [twin, grants] : policy.spec().twins) {
    if (isolation == Isolation::cwd || (grants.network == NetworkAccess::host && !policy.safe_mode())) {
      twins.push_back(twin);
    }
  }
  return twins;
}

std::string host_network_warning(const std::vector<std::string>& twins, Isolation isolation) {
  std::string names;
  for (const auto& twin : twins) names += (names.empty() ? "" : ",") + twin;
  const std::string why = isolation == Isolation::cwd ? "isolation cwd shares it with every twin" : "policy network = \"host\"";
  return "WARNING: HOST NETWORK for twins " + names + " (" + why +
         "): their commands reach every service on the host's loopback (this server's port included), abstract "
         "unix sockets, the host's LAN and cloud metadata endpoints, as a host process would; see README, Isolation";
}

}  // namespace pagi_exec
