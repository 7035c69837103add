// SPDX-License-Identifier: Apache-2.0
// The server's library objects, made once from the configuration: sandbox (with its isolation
// probe and fallback), policy, audit log, executor, and what HealthCheck reports about them.
#pragma once

#include <memory>
#include <string>

#include <tl/expected.hpp>

#include <pagi_exec/pagi_exec.hpp>

#include "auth.hpp"
#include "codec.hpp"
#include "config.hpp"
#include "executor_holder.hpp"

namespace tools_server {

/// A start-up failure: its message goes to stderr as one line, the process exits with `code`.
struct StartupError {
  int code = exit_bad_config;
  std::string message;
};

struct Library {
  pagi_exec::Executor executor;
  codec::HealthReport health;
  std::shared_ptr<pagi_exec::AuditLog> audit;  ///< null without TOOLS_AUDIT_LOG
  std::shared_ptr<pagi_exec::AuditSink> audit_sink;  ///< writes to `audit`, logging failures; null without
  std::shared_ptr<pagi_exec::Admission> admission;  ///< the execution slots and memory budget
};

/// Everything the configuration asks for, probed and validated, or the first reason it cannot be.
[[nodiscard]] tl::expected<Library, StartupError> make_library(const ServerConfig& config);

/// The policy and tool catalog in effect: TOOLS_POLICY_FILE, or the embedded seed matrix; with
/// SAFE_MODE=true forcing safe mode on. The error names the variable, file, line and column.
[[nodiscard]] tl::expected<pagi_exec::PolicyFile, std::string> load_policy(const ServerConfig& config);

/// SIGHUP: reopens the audit log (logrotate's postrotate), reloads the policy file
/// (reload_policy) and, with token authentication, the tokens file. Whatever fails keeps its
/// old state and is logged.
void reload(const Library& library, const ServerConfig& config, ExecutorHolder& executor, AuthHolder& auth);

/// Logs a warning naming every twin whose executions share the host's network (start-up and
/// every policy reload); nothing when there is none.
void warn_host_network(const pagi_exec::Policy& policy, pagi_exec::Isolation isolation);

/// SIGHUP's policy reload: loads TOOLS_POLICY_FILE again and swaps it in atomically (running
/// executions keep the policy they started under); a broken file keeps the old policy and the
/// reason is logged. Without a policy file, nothing to do.
void reload_policy(const ServerConfig& config, ExecutorHolder& executor);

}  // namespace tools_server
