// SPDX-License-Identifier: Apache-2.0
// Outcome: everything known about one request once it is over.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/decision.hpp"
#include "pagi_exec/egress.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// Exit codes with a fixed meaning, as in the seed service and coreutils' timeout(1).
/// A tool called with arguments it cannot take (a usage error, as shells and getopt use 2).
inline constexpr int exit_usage = 2;
inline constexpr int exit_timeout = 124;
inline constexpr int exit_not_executable = 126;
inline constexpr int exit_not_found = 127;
/// Exit code of a command killed by signal N is signal_exit_base + N.
inline constexpr int signal_exit_base = 128;
/// Message of an execution ended by its time limit (the wire contract depends on it).
inline constexpr const char* timeout_message = "execution_timeout";

/// Which limit ended (or hobbled) an execution.
enum class LimitHit : std::uint8_t { none, timeout, memory, pids, cpu, file_size, workspace_quota };

/// The names clients see: "execution_timeout", "memory_limit_exceeded", "pids_limit",
/// "cpu_limit", "file_size_limit", "workspace_quota_exceeded"; "" for none.
[[nodiscard]] constexpr const char* to_string(LimitHit hit) noexcept {
  switch (hit) {
    case LimitHit::none: return "";
    case LimitHit::timeout: return "execution_timeout";
    case LimitHit::memory: return "memory_limit_exceeded";
    case LimitHit::pids: return "pids_limit";
    case LimitHit::cpu: return "cpu_limit";
    case LimitHit::file_size: return "file_size_limit";
    case LimitHit::workspace_quota: return "workspace_quota_exceeded";
  }
  return "unknown";
}

/// One output stream as captured: whole lines (without '\n'), bounded by OutputCaps.
struct CapturedStream {
  std::vector<std::string> lines;
  bool truncated = false;        ///< some output was dropped because of a cap
  std::uint64_t total_bytes = 0; ///< everything the command wrote, kept or not
  bool operator==(const CapturedStream&) const = default;
};

/// CPU and memory the command's process tree used, as the kernel reports them (wait4).
struct Usage {
  std::chrono::microseconds cpu_user{0};
  std::chrono::microseconds cpu_system{0};
  std::uint64_t max_rss_bytes = 0;      ///< peak resident set of the largest process
  std::uint64_t peak_memory_bytes = 0;  ///< native with cgroups: peak memory of the whole tree
  /// User plus system CPU time.
  [[nodiscard]] std::chrono::microseconds cpu_time() const noexcept { return cpu_user + cpu_system; }
  /// The peak memory clients are told: the whole tree's where it was measured, else the largest
  /// process's resident set.
  [[nodiscard]] std::uint64_t peak_bytes() const noexcept {
    return peak_memory_bytes != 0 ? peak_memory_bytes : max_rss_bytes;
  }
  bool operator==(const Usage&) const = default;
};

/// What a twin's workspace (SANDBOX_DIR/<twin>/) occupies on disk, and its quota.
struct WorkspaceUsage {
  std::uint64_t bytes = 0;        ///< allocated bytes (st_blocks, as du(1) counts them)
  std::uint64_t entries = 0;      ///< files, folders, links and other entries
  std::uint64_t quota_bytes = 0;  ///< the twin's quota; 0 means none
  /// True when a quota is set and the workspace holds more than it.
  [[nodiscard]] bool over_quota() const noexcept { return quota_bytes != 0 && bytes > quota_bytes; }
  bool operator==(const WorkspaceUsage&) const = default;
};

/// One twin's workspace as last measured.
struct TwinWorkspace {
  std::string twin_id;
  WorkspaceUsage usage;
  bool operator==(const TwinWorkspace&) const = default;
};

/// "31.5 MiB", "12 KiB", "512 bytes": a size as people read it.
[[nodiscard]] inline std::string describe_size(std::uint64_t bytes) {
  constexpr std::uint64_t kib = 1024;
  constexpr std::uint64_t mib = kib * 1024;
  if (bytes < kib) return std::to_string(bytes) + " bytes";
  if (bytes < mib) return std::to_string((bytes + kib / 2) / kib) + " KiB";
  const auto tenths = (bytes * 10 + mib / 2) / mib;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MiB";
}

/// "workspace over quota: 300.0 MiB of 256.0 MiB used; ..." and what to do about it.
[[nodiscard]] inline std::string describe_over_quota(const WorkspaceUsage& usage) {
  return "workspace over quota: " + describe_size(usage.bytes) + " of " + describe_size(usage.quota_bytes) +
         " used; file_write and commands that can write the workspace are refused until it is back under: "
         "shrink files with file_write <path> \"\" (a write that does not grow the workspace is always "
         "accepted), or ask the operator to remove files from the twin's workspace";
}

/// How a request ended, in the one vocabulary of history filters, audit records and their readers.
enum class RecordOutcome : std::uint8_t { allowed, refused, succeeded, failed, timed_out, auth_rejected };

/// "allowed", "refused", "succeeded", "failed", "timed_out", "auth_rejected": the names clients
/// filter by (ListExecutions, pagi-exec audit --outcome).
[[nodiscard]] constexpr std::string_view to_string(RecordOutcome outcome) noexcept {
  switch (outcome) {
    case RecordOutcome::allowed: return "allowed";
    case RecordOutcome::refused: return "refused";
    case RecordOutcome::succeeded: return "succeeded";
    case RecordOutcome::failed: return "failed";
    case RecordOutcome::timed_out: return "timed_out";
    case RecordOutcome::auth_rejected: return "auth_rejected";
  }
  return "unknown";
}

/// Every RecordOutcome, in the order of the enum (and of the documentation).
inline constexpr std::array<RecordOutcome, 6> all_record_outcomes = {
    RecordOutcome::allowed,   RecordOutcome::refused,   RecordOutcome::succeeded,
    RecordOutcome::failed,    RecordOutcome::timed_out, RecordOutcome::auth_rejected};

/// The RecordOutcome named `name` (see to_string); nullopt for anything else.
[[nodiscard]] constexpr std::optional<RecordOutcome> record_outcome_from_string(std::string_view name) noexcept {
  for (const auto outcome : all_record_outcomes) {
    if (to_string(outcome) == name) return outcome;
  }
  return std::nullopt;
}

/// The names of `outcomes` for a message, "allowed, refused or timed_out" with `last` = " or ".
[[nodiscard]] inline std::string list_names(std::span<const RecordOutcome> outcomes, std::string_view last = ", ") {
  std::string text;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (i != 0) text += i + 1 == outcomes.size() ? last : std::string_view(", ");
    text += to_string(outcomes[i]);
  }
  return text;
}

/// How a request that was let through ended: timed_out, succeeded (it ran and exited 0) or failed
/// (anything else: a non-zero exit, not started, cancelled). The one classifier of endings:
/// history filters and audit records both use it.
[[nodiscard]] constexpr RecordOutcome how_it_ended(bool ran, int exit_code, bool timed_out) noexcept {
  if (timed_out) return RecordOutcome::timed_out;
  return ran && exit_code == 0 ? RecordOutcome::succeeded : RecordOutcome::failed;
}

/// The result of Executor::run. A refused request is an Outcome too (decision.allowed false).
struct Outcome {
  std::string execution_id;  ///< UUID v4, fresh for every request
  Decision decision;
  bool ran = false;        ///< a process (or built-in tool) actually ran
  /// 0 success; 1 refused; 2 a call that cannot run as asked; 124 timeout; 126/127 not
  /// executable/found; 128+N signal. Exactly what clients are told.
  int exit_code = 1;
  int signal = 0;          ///< the signal that ended the command, 0 if it exited
  bool timed_out = false;  ///< killed at the time limit
  bool cancelled = false;  ///< killed because the caller went away or the server stopped
  LimitHit limit_hit = LimitHit::none;  ///< the limit that ended or hobbled the run
  CapturedStream out;
  CapturedStream err;
  Usage usage;
  std::chrono::microseconds elapsed{0};
  /// From the decision to the command running (its exec done): admission, audit record, folders,
  /// sandbox set-up. 0 when nothing was started (a refusal, file_write, a program not found) or
  /// the spawner does not tell. Not on the wire nor in the audit record.
  std::chrono::microseconds startup{0};
  Isolation isolation = Isolation::cwd;  ///< the isolation the command ran under
  /// The revision of the policy that decided (PolicySpec::revision: "builtin", or a file's hash).
  std::string policy_revision;
  /// Human-readable summary, as clients are told it: timeout_message, alone, on timeout.
  std::string message;
  /// The twin's workspace after the request, when it was measured or is known (file_write, and
  /// runs whose command can write the workspace); nullopt otherwise.
  std::optional<WorkspaceUsage> workspace;
  /// A run of a twin with network = "egress": its connections through the egress proxy; nullopt
  /// for every other run.
  std::optional<EgressSummary> egress;

  /// True exactly when the command ran and exited 0 (it "succeeded").
  [[nodiscard]] bool success() const noexcept {
    return how_it_ended(ran, exit_code, timed_out) == RecordOutcome::succeeded;
  }
};

}  // namespace pagi_exec
