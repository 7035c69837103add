// SPDX-License-Identifier: Apache-2.0
// Making the server's library objects from its configuration.
#include "library.hpp"

#include <unistd.h>

#include <algorithm>

#include <pagi_exec/policy_file.hpp>

#include "audit_sink.hpp"
#include "log.hpp"

namespace tools_server {
namespace {

// TOOLS_ISOLATION=auto (the default): the strongest isolation that works here.
tl::expected<pagi_exec::Sandbox, StartupError> choose_sandbox(const ServerConfig& config,
                                                              const pagi_exec::SandboxSpec& spec, std::string& reason) {
  auto choice = pagi_exec::choose_isolation(spec);
  if (!choice) return tl::unexpected(StartupError{.message = "sandbox: " + choice.error().message()});
  reason = "auto: " + choice->reason;
  if (choice->sandbox.isolation() == pagi_exec::Isolation::cwd && config.isolation_required()) {
    return tl::unexpected(StartupError{.message = "TOOLS_ISOLATION / --isolation: 'auto' found no isolation that works "
                                                  "here (" + choice->reason +
                                                  ") and TOOLS_REQUIRE_ISOLATION / --require-isolation is set"});
  }
  return std::move(choice->sandbox);
}

// Makes the sandbox, probing the isolation once: the requested one (falling back to cwd unless
// required), or with auto the strongest that works. `reason` says why, `fallback` why not.
tl::expected<pagi_exec::Sandbox, StartupError> make_sandbox(const ServerConfig& config, std::string& reason,
                                                            std::string& fallback) {
  auto limits = config.limits;
  limits.timeout = config.timeout;
  limits.output = {.max_bytes = config.max_output_bytes, .max_lines = config.max_output_lines};
  const pagi_exec::SandboxSpec spec{
      .root_dir = config.sandbox_dir,
      .isolation = config.isolation.value_or(pagi_exec::Isolation::cwd),
      .limits = limits,
      .bwrap_path = config.bwrap_path,
      .sandbox_uid = config.run_as_uid,
      .sandbox_gid = config.run_as_gid,
      .run_as_root = config.run_as_root,
      .native_ids = config.native_ids,
  };
  if (!config.isolation) return choose_sandbox(config, spec, reason);
  const auto requested = std::string(pagi_exec::to_string(*config.isolation));
  reason = "requested by TOOLS_ISOLATION";
  auto sandbox = pagi_exec::Sandbox::make(spec);
  if (!sandbox) return tl::unexpected(StartupError{.message = "sandbox: " + sandbox.error().message()});
  if (*config.isolation == pagi_exec::Isolation::cwd) return *sandbox;
  const auto probe = pagi_exec::check_isolation(*sandbox);
  if (probe) return *sandbox;
  if (config.isolation_required()) {
    return tl::unexpected(StartupError{
        .message = "TOOLS_ISOLATION / --isolation: '" + requested + "' does not work here (" + probe.error().message() +
                   ") and TOOLS_REQUIRE_ISOLATION / --require-isolation is set"});
  }
  fallback = probe.error().message();
  log(LogLevel::warn, "!!! isolation '" + requested + "' does not work here (" + fallback +
                          "): FALLING BACK TO 'cwd', commands are NOT isolated from the host; set "
                          "TOOLS_REQUIRE_ISOLATION=true to refuse to start instead");
  return sandbox->with_isolation(pagi_exec::Isolation::cwd);
}

// Who commands run as, said once at start-up; loudly when it is the server's own root.
void log_command_identity(const ServerConfig& config, pagi_exec::Isolation effective) {
  const auto ids = std::to_string(config.run_as_uid) + ":" + std::to_string(config.run_as_gid);
  const bool root = ::geteuid() == 0;
  if (effective == pagi_exec::Isolation::native) {
    const auto& pool = config.native_ids;
    if (root && pool.count != 0) {
      log(LogLevel::info, "native commands run as a uid = gid of their own from TOOLS_UID_POOL (" +
                              std::to_string(pool.first + 1) + "-" + std::to_string(pool.first + pool.count - 1) + ")");
    } else {
      log(LogLevel::info, "commands run as " + (root ? ids : std::string("uid ") + ids + " of a user namespace"));
    }
  } else if (config.run_as_root) {
    log(LogLevel::warn, std::string("!!! TOOLS_RUN_AS_ROOT=true: ") + pagi_exec::to_string(effective) +
                            " commands run as the server's own uid " + std::to_string(::geteuid()) +
                            (root ? " (ROOT): a command can change the host as root, plant setuid-root files and kill its "
                                    "supervisor; unset TOOLS_RUN_AS_ROOT to run them as " + ids
                                  : ""));
  } else if (root) {
    log(LogLevel::info, std::string(pagi_exec::to_string(effective)) + " commands run as " + ids +
                            " with no supplementary groups and no_new_privs");
  } else {
    log(LogLevel::info, std::string("the server is not root: ") + pagi_exec::to_string(effective) +
                            " commands run as its own uid " + std::to_string(::geteuid()) + " (with no_new_privs)");
  }
}

// The admission of executions: the configured limits, or the defaults (a quarter of the total
// per twin; half the host's memory, never less than one execution's limit).
tl::expected<std::shared_ptr<pagi_exec::Admission>, StartupError> make_admission(const ServerConfig& config) {
  const auto total = static_cast<std::uint32_t>(config.max_concurrency);
  std::uint64_t budget = config.memory_budget_bytes.value_or(pagi_exec::host_memory_bytes() / 2);
  if (!config.memory_budget_bytes && budget != 0) budget = std::max(budget, config.limits.memory_bytes);
  auto admission = pagi_exec::Admission::make(pagi_exec::AdmissionSpec{
      .max_running = total,
      .max_running_per_twin = config.max_concurrency_per_twin
                                  ? static_cast<std::uint32_t>(*config.max_concurrency_per_twin)
                                  : pagi_exec::default_per_twin_limit(total),
      .memory_budget_bytes = budget,
  });
  if (!admission) return tl::unexpected(StartupError{.message = "TOOLS_MAX_CONCURRENCY: " + admission.error().message()});
  if (budget != 0 && config.limits.memory_bytes == 0) {
    log(LogLevel::warn, "TOOLS_MEMORY_LIMIT_MB=0: an execution without a memory limit reserves the whole memory budget, "
                        "so such executions run one at a time; set a memory limit, or TOOLS_MEMORY_BUDGET_MB=0");
  }
  return *admission;
}

// SAFE_MODE=true forces safe mode on, whatever the file says; the file can switch it on too.
pagi_exec::PolicyFile apply_safe_mode(pagi_exec::PolicyFile file, bool forced) {
  if (forced && !file.policy.safe_mode()) file.policy = file.policy.with_safe_mode(true);
  return file;
}

tl::expected<std::shared_ptr<pagi_exec::AuditLog>, StartupError> open_audit(const ServerConfig& config) {
  if (config.audit_log.empty()) return nullptr;
  using Sync = pagi_exec::AuditOptions::Sync;
  auto audit = pagi_exec::AuditLog::open(pagi_exec::AuditOptions{
      .path = config.audit_log,
      .sync = config.audit_sync_every ? Sync::every : Sync::interval,
      .rotate_bytes = config.audit_rotate_bytes,
      .required = config.audit_required,
  });
  if (!audit) return tl::unexpected(StartupError{.message = "TOOLS_AUDIT_LOG / --audit-log: " + audit.error().message()});
  return *audit;
}

}  // namespace

tl::expected<Library, StartupError> make_library(const ServerConfig& config) {
  auto policy = load_policy(config);
  if (!policy) return tl::unexpected(StartupError{.message = policy.error()});
  std::string reason, fallback;
  auto sandbox = make_sandbox(config, reason, fallback);
  if (!sandbox) return tl::unexpected(sandbox.error());
  log_command_identity(config, sandbox->isolation());
  if (const auto& ids = config.native_ids; sandbox->isolation() == pagi_exec::Isolation::native && ids.count != 0 &&
                                           ids.count - 1 < static_cast<std::uint32_t>(config.max_concurrency)) {
    log(LogLevel::warn, "TOOLS_UID_POOL holds " + std::to_string(ids.count - 1) + " run uids, fewer than TOOLS_MAX_CONCURRENCY (" +
                            std::to_string(config.max_concurrency) + "): native runs beyond that many at once are refused");
  }
  auto audit = open_audit(config);
  if (!audit) return tl::unexpected(audit.error());
  auto admission = make_admission(config);
  if (!admission) return tl::unexpected(admission.error());
  std::shared_ptr<pagi_exec::AuditSink> sink;
  if (*audit) sink = std::make_shared<LoggingAuditSink>(*audit);
  auto executor = pagi_exec::Executor::make(pagi_exec::ExecutorParts{
      .policy = policy->policy,
      .sandbox = *sandbox,
      .catalog = policy->catalog,
      .spawner = nullptr,
      .history = std::make_shared<pagi_exec::History>(config.history_size),
      .audit = sink,
      .audit_required = config.audit_required,
      .admission = *admission,
      .request_limits = config.request_limits,
  });
  if (!executor) {
    return tl::unexpected(StartupError{.message = "SANDBOX_DIR / --sandbox-dir: " + executor.error().message()});
  }
  codec::HealthReport health{
      .requested = config.isolation,
      .effective = sandbox->isolation(),
      .isolation_reason = reason,
      .fallback_reason = fallback,
      .safe_mode = policy->policy.safe_mode(),
      .sandbox_dir = config.sandbox_dir.string(),
      .timeout = config.timeout,
      .limits = sandbox->limits(),
      .audit = *audit,
      .policy_revision = policy->policy.revision(),
      .admission = *admission,
      .host_network_twins = codec::host_network_twins(policy->policy, sandbox->isolation()),
  };
  return Library{std::move(*executor), std::move(health), *audit, sink, *admission};
}


tl::expected<pagi_exec::PolicyFile, std::string> load_policy(const ServerConfig& config) {
  if (config.policy_file.empty()) {
    return apply_safe_mode({pagi_exec::Policy::seed_default(), pagi_exec::ToolCatalog::seed_default()}, config.safe_mode);
  }
  auto file = pagi_exec::load_policy_file(config.policy_file);
  if (!file) return tl::unexpected("TOOLS_POLICY_FILE / --policy: " + file.error().message());
  return apply_safe_mode(std::move(*file), config.safe_mode);
}

void warn_host_network(const pagi_exec::Policy& policy, pagi_exec::Isolation isolation) {
  const auto twins = codec::host_network_twins(policy, isolation);
  if (!twins.empty()) log(LogLevel::warn, "!!! " + codec::host_network_warning(twins, isolation));
}

void reload_policy(const ServerConfig& config, ExecutorHolder& executor) {
  if (config.policy_file.empty()) return;
  auto file = load_policy(config);
  if (!file) {
    log(LogLevel::error, "SIGHUP: policy NOT reloaded, the old one stays in effect: " + file.error());
    executor.reload_failed(file.error());  // HealthCheck says "degraded" until a reload succeeds
    return;
  }
  const auto revision = file->policy.revision();
  const bool safe = file->policy.safe_mode();
  executor.replace(executor.current()->with_policy(std::move(file->policy), std::move(file->catalog)));
  log(LogLevel::info, "SIGHUP: policy reloaded from " + config.policy_file.string() + " (revision " + revision +
                          ", safe_mode=" + (safe ? "true" : "false") + ")");
  const auto current = executor.current();
  warn_host_network(current->policy(), current->sandbox().isolation());
}

void reload(const Library& library, const ServerConfig& config, ExecutorHolder& executor, AuthHolder& auth) {
  if (library.audit) {
    if (auto reopened = library.audit->reopen(); !reopened) {
      log(LogLevel::error, "SIGHUP: cannot reopen the audit log: " + reopened.error().message());
    } else {
      log(LogLevel::info, "SIGHUP: audit log reopened");
    }
  }
  reload_policy(config, executor);
  if (config.auth == "token") {
    auto tokens = TokenTable::load(config.auth_tokens_file);
    if (!tokens) {
      log(LogLevel::error, "SIGHUP: tokens NOT reloaded, the old ones stay valid: " + tokens.error());
    } else {
      log(LogLevel::info, "SIGHUP: " + std::to_string(tokens->size()) + " tokens reloaded");
      auth.replace(Authenticator::with_tokens(std::move(*tokens)));
    }
  }
}

}  // namespace tools_server
