// SPDX-License-Identifier: Apache-2.0
// HostSettings: every setting of a host of the library, each with its one default.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "pagi_exec/admission.hpp"
#include "pagi_exec/audit.hpp"
#include "pagi_exec/command.hpp"
#include "pagi_exec/execution_store.hpp"
#include "pagi_exec/history.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// What a host (the gRPC server, the CLI) makes its library objects from. Plain data: the
/// defaults are those of the library's own specs, so no host re-types them. Each field is one
/// documented setting (README, Configuration); the names in the comments are the server's.
struct HostSettings {
  /// Workspace root (SANDBOX_DIR), limits with the timeout and output caps, bwrap path, the
  /// commands' uid/gid, TOOLS_RUN_AS_ROOT and the native id pool. Its `isolation` is ignored:
  /// `isolation` below says what to ask for.
  SandboxSpec sandbox;
  /// TOOLS_ISOLATION; unset ("auto"): the strongest that works here (native, bwrap, cwd).
  std::optional<Isolation> isolation;
  /// TOOLS_REQUIRE_ISOLATION: refuse to start when the isolation does not work. Unset: required
  /// for native (asking for the sandbox and silently not getting it is never right), not for
  /// bwrap; with auto, true refuses to start when only cwd works.
  std::optional<bool> require_isolation;
  bool safe_mode = false;              ///< SAFE_MODE: forces safe mode on, whatever the policy file says
  /// TOOLS_ALLOW_HOST_NETWORK: a policy may give twins network = "host"; without it such a policy
  /// is refused (at start-up and at reload).
  bool allow_host_network = false;
  std::filesystem::path policy_file;   ///< TOOLS_POLICY_FILE; empty: the embedded seed matrix
  RequestLimits request_limits;        ///< TOOLS_MAX_ARGS, TOOLS_MAX_REQUEST_BYTES
  std::uint32_t max_concurrency = AdmissionSpec{}.max_running;  ///< TOOLS_MAX_CONCURRENCY
  std::optional<std::uint32_t> max_concurrency_per_twin;  ///< unset: default_per_twin_limit
  std::optional<std::uint64_t> memory_budget_bytes;       ///< unset: half the host's memory; 0: none
  std::size_t history_size = History::default_capacity;   ///< TOOLS_HISTORY_SIZE
  /// TOOLS_HISTORY (where records are kept; the library's default: the memory ring, the
  /// server's: SQLite under TOOLS_STATE_DIR), TOOLS_HISTORY_MAX_AGE_DAYS and
  /// TOOLS_HISTORY_QUEUE_*. Its max_records is history_max_records, else history_size.
  StoreSettings history_store;
  std::optional<std::size_t> history_max_records;  ///< TOOLS_HISTORY_MAX_RECORDS
  std::string node_id;  ///< TOOLS_NODE_ID: names this host in every record; empty: the host name
  AuditOptions audit;  ///< TOOLS_AUDIT_*; an empty path: no audit log
  /// TOOLS_CGROUP_FAVORDYNMODS: at start-up, turn on the kernel-wide cgroup2 option that takes
  /// each run's cgroup attach off an RCU grace period (a run's latency tail on cgroup v1).
  bool favor_cgroup_moves = false;

  /// The store to open: history_store with the record count in effect.
  [[nodiscard]] StoreSettings history_store_settings() const {
    auto store = history_store;
    store.max_records = history_max_records.value_or(history_size);
    return store;
  }
  /// Whether a start must fail rather than fall back when the isolation does not work.
  [[nodiscard]] bool isolation_required() const noexcept {
    return require_isolation.value_or(isolation == Isolation::native);
  }
  bool operator==(const HostSettings&) const = default;
};

}  // namespace pagi_exec
