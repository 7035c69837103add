// SPDX-License-Identifier: Apache-2.0
// Making the server's library objects from its configuration.
#include "library.hpp"

#include "log.hpp"

namespace tools_server {
namespace {

// Makes the sandbox, probing the requested isolation once; falls back to cwd unless required.
tl::expected<pagi_exec::Sandbox, StartupError> make_sandbox(const ServerConfig& config, std::string& fallback) {
  auto limits = config.limits;
  limits.timeout = config.timeout;
  limits.output = {.max_bytes = config.max_output_bytes, .max_lines = config.max_output_lines};
  auto sandbox = pagi_exec::Sandbox::make(pagi_exec::SandboxSpec{
      .root_dir = config.sandbox_dir,
      .isolation = config.isolation,
      .limits = limits,
      .bwrap_path = config.bwrap_path,
  });
  if (!sandbox) return tl::unexpected(StartupError{.message = "sandbox: " + sandbox.error().message()});
  if (config.isolation == pagi_exec::Isolation::cwd) return *sandbox;
  const auto probe = pagi_exec::check_isolation(*sandbox);
  if (probe) return *sandbox;
  if (config.isolation_required()) {
    return tl::unexpected(StartupError{
        .message = "TOOLS_ISOLATION / --isolation: '" + std::string(pagi_exec::to_string(config.isolation)) +
                   "' does not work here (" + probe.error().message() +
                   ") and TOOLS_REQUIRE_ISOLATION / --require-isolation is set"});
  }
  fallback = probe.error().message();
  log(LogLevel::warn, "!!! isolation '" + std::string(pagi_exec::to_string(config.isolation)) +
                                        "' does not work here (" + fallback +
                                        "): FALLING BACK TO 'cwd', commands are NOT isolated from the host; set "
                                        "TOOLS_REQUIRE_ISOLATION=true to refuse to start instead");
  return sandbox->with_isolation(pagi_exec::Isolation::cwd);
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
  std::string fallback;
  auto sandbox = make_sandbox(config, fallback);
  if (!sandbox) return tl::unexpected(sandbox.error());
  auto audit = open_audit(config);
  if (!audit) return tl::unexpected(audit.error());
  auto executor = pagi_exec::Executor::make(pagi_exec::ExecutorParts{
      .policy = policy->policy,
      .sandbox = *sandbox,
      .catalog = policy->catalog,
      .spawner = nullptr,
      .history = std::make_shared<pagi_exec::History>(config.history_size),
      .audit = *audit,
      .audit_required = config.audit_required,
      .request_limits = config.request_limits,
  });
  if (!executor) {
    return tl::unexpected(StartupError{.message = "SANDBOX_DIR / --sandbox-dir: " + executor.error().message()});
  }
  codec::HealthReport health{
      .requested = config.isolation,
      .effective = sandbox->isolation(),
      .fallback_reason = fallback,
      .safe_mode = policy->policy.safe_mode(),
      .sandbox_dir = config.sandbox_dir.string(),
      .timeout = config.timeout,
      .limits = sandbox->limits(),
      .audit = *audit,
      .policy_revision = policy->policy.revision(),
  };
  return Library{std::move(*executor), std::move(health), *audit};
}


tl::expected<pagi_exec::PolicyFile, std::string> load_policy(const ServerConfig& config) {
  if (config.policy_file.empty()) {
    return apply_safe_mode({pagi_exec::Policy::seed_default(), pagi_exec::ToolCatalog::seed_default()}, config.safe_mode);
  }
  auto file = pagi_exec::load_policy_file(config.policy_file);
  if (!file) return tl::unexpected("TOOLS_POLICY_FILE / --policy: " + file.error().message());
  return apply_safe_mode(std::move(*file), config.safe_mode);
}

void reload_policy(const ServerConfig& config, ExecutorHolder& executor) {
  if (config.policy_file.empty()) return;
  auto file = load_policy(config);
  if (!file) {
    log(LogLevel::error, "SIGHUP: policy NOT reloaded, the old one stays in effect: " + file.error());
    return;
  }
  const auto revision = file->policy.revision();
  const bool safe = file->policy.safe_mode();
  executor.replace(executor.current()->with_policy(std::move(file->policy), std::move(file->catalog)));
  log(LogLevel::info, "SIGHUP: policy reloaded from " + config.policy_file.string() + " (revision " + revision +
                          ", safe_mode=" + (safe ? "true" : "false") + ")");
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
