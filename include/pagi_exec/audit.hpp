// SPDX-License-Identifier: Apache-2.0
// Audit log: a durable, append-only JSON Lines record of every decision and execution, and its reader.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/egress.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/history.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/rfc3339.hpp"

namespace pagi_exec {

namespace detail {
struct AuditLogState;
}  // namespace detail

/// A call its host refused before any decision: the credential was missing or wrong, or it proved
/// another twin than the request names. Never holds the credential itself.
struct AuthRejection {
  std::string peer;    ///< the caller's address as the transport saw it, e.g. "ipv4:127.0.0.1:50432"
  std::string rpc;     ///< the call, e.g. "RequestExecution"
  std::string status;  ///< e.g. "UNAUTHENTICATED" or "PERMISSION_DENIED"
  std::string reason;  ///< e.g. "unknown or revoked token"
};

/// Where the Executor reports requests. Implementations must be thread-safe: every gRPC thread calls.
class AuditSink {
 public:
  virtual ~AuditSink() = default;

  /// Called once a request is decided (allowed or refused), before anything runs. `outcome` holds
  /// execution_id, decision and isolation. Errc::io when the record could not be stored.
  [[nodiscard]] virtual Result<void> decided(const Request& request, const Outcome& outcome) = 0;

  /// Called when an allowed request ends (ran, timed out, failed to start...) with the complete
  /// Outcome. The call time is the finish time; the start is that minus Outcome::elapsed.
  /// Errc::io when the record could not be stored.
  [[nodiscard]] virtual Result<void> finished(const Request& request, const Outcome& outcome) = 0;

  /// Called by a host that authenticates callers when it refuses a call's credential; `request`
  /// is what the call claimed (twin, tool, args), as far as the call carried one. The default
  /// stores nothing. Errc::io when the record could not be stored.
  [[nodiscard]] virtual Result<void> rejected(const Request& request, const AuthRejection& rejection);

  /// Called by the egress proxy when a connection attempt of an egress run ends (allowed or
  /// refused), before that run's finished(). The default stores nothing. Errc::io when the record
  /// could not be stored.
  [[nodiscard]] virtual Result<void> egress(const EgressConnection& connection);
};

/// How an AuditLog writes. Fill with designated initializers, then AuditLog::open.
struct AuditOptions {
  std::filesystem::path path;  ///< the JSON Lines file; created (mode 0640) when missing
  /// every: fdatasync after each record (survives power loss); interval: a background thread syncs
  /// at most `sync_interval` after a write. Both survive a crash of the writing process.
  enum class Sync : std::uint8_t { every, interval } sync = Sync::every;
  std::chrono::milliseconds sync_interval{1000};
  std::uint64_t rotate_bytes = 0;     ///< rename to path + ".1" before a record would pass it; 0: never
  std::size_t max_arg_bytes = max_recorded_args_bytes;  ///< each request string (arg, tool, twin...) is cut to this
  bool required = false;              ///< recorded for the host: refuse executions that cannot be audited
  /// All args together are cut to this (see bounded_args).
  std::size_t max_args_total_bytes = max_recorded_args_bytes;
  std::string node;  ///< every record's "node" field (TOOLS_NODE_ID); empty: an empty field
  bool operator==(const AuditOptions&) const = default;
};

/// The file-backed AuditSink. Each record is one line written with one write(2) on an
/// O_APPEND descriptor, so after a kill -9 the file parses line by line and at most its last line
/// is torn. All members are thread-safe. See docs/audit.md for the record format.
class AuditLog final : public AuditSink {
 public:
  /// What status() reports.
  struct Status {
    bool healthy = true;         ///< the last record, sync or reopen succeeded
    std::string last_error;      ///< the most recent failure, kept after recovery; "" if none yet
    std::uint64_t records_written = 0;
    std::uint64_t records_failed = 0;
  };

  /// Validates `options` (Errc::invalid_config: empty path, zero max_arg_bytes, sync_interval not
  /// positive) and opens the file for appending (Errc::io: missing folder, no permission...).
  [[nodiscard]] static Result<std::shared_ptr<AuditLog>> open(AuditOptions options);

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  /// Stops the sync thread and syncs what is not yet synced.
  ~AuditLog() override;

  /// Appends a "decision" record. Errc::io (with the path, the cause and a fix) when it is not
  /// written; Errc::internal if the record cannot be encoded.
  [[nodiscard]] Result<void> decided(const Request& request, const Outcome& outcome) override;
  /// Appends an "execution" record; errors as decided().
  [[nodiscard]] Result<void> finished(const Request& request, const Outcome& outcome) override;
  /// Appends an "auth_rejected" record (with a fresh id of its own); errors as decided().
  [[nodiscard]] Result<void> rejected(const Request& request, const AuthRejection& rejection) override;
  /// Appends an "egress" record; errors as decided().
  [[nodiscard]] Result<void> egress(const EgressConnection& connection) override;

  /// Closes the file and opens the path again (logrotate's postrotate SIGHUP). Errc::io when the
  /// path cannot be opened; the next record tries again.
  [[nodiscard]] Result<void> reopen();
  /// Forces the written records to disk now (fdatasync). Errc::io when the sync fails.
  [[nodiscard]] Result<void> sync();

  /// Health and counters, as of now.
  [[nodiscard]] Status status() const;
  /// Whether the host should refuse executions it cannot audit (AuditOptions::required).
  [[nodiscard]] bool required() const noexcept;
  /// The options the log was opened with (immutable).
  [[nodiscard]] const AuditOptions& options() const noexcept;

 private:
  explicit AuditLog(std::unique_ptr<detail::AuditLogState> state);
  [[nodiscard]] Result<void> append(Result<std::string> line);
  std::unique_ptr<detail::AuditLogState> state_;
};

/// Which records read_audit_log keeps. Every set field must match.
struct AuditFilter {
  std::optional<std::string> twin;     ///< twin_id as claimed, or authenticated_twin
  std::optional<std::string> job;      ///< job_id
  /// AuditEntry::outcome(): a RecordOutcome's name (all_record_outcomes).
  std::optional<std::string> outcome;
  std::optional<std::chrono::system_clock::time_point> since;  ///< time >= since
  std::optional<std::chrono::system_clock::time_point> until;  ///< time < until
};

/// One record of the log, as read back.
struct AuditEntry {
  std::string type;          ///< "decision", "execution", "auth_rejected" or "egress"
  std::string execution_id;
  std::string time;          ///< as written (RFC 3339 UTC)
  std::string twin_id;
  std::optional<std::string> authenticated_twin;
  std::string job_id;
  std::string ns;
  std::string tool;
  std::vector<std::string> args;
  bool args_truncated = false;
  bool allowed = false;
  std::vector<std::string> notes;  ///< what the policy could not judge ("unjudgeable: ...")
  std::string reason;
  std::string rule;
  std::string policy_revision;  ///< the revision of the policy that decided ("" in auth_rejected)
  std::string node;             ///< the server that wrote it (TOOLS_NODE_ID or the host name)
  std::string argv_sha256;      ///< digest of tool and every arg as requested (docs/audit.md)
  std::string prev;             ///< the hash chain's link: SHA-256 of the record before
  std::string isolation;
  bool ran = false;                          ///< executions only
  std::optional<int> exit_code;              ///< executions only
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  std::string limit_hit;
  std::optional<std::int64_t> duration_ms;   ///< executions only
  std::string message;
  std::string peer;                          ///< auth_rejected only: the caller's address
  std::string rpc;                           ///< auth_rejected only: the call refused
  std::string method;                        ///< egress only: "CONNECT" or a forwarded request's method
  std::string host;                          ///< egress only: the host asked for
  std::uint16_t port = 0;                    ///< egress only
  std::string address;                       ///< egress only: the address connected to or refused
  std::uint64_t bytes_up = 0;                ///< egress only: from the run to the destination
  std::uint64_t bytes_down = 0;              ///< egress only: from the destination to the run
  std::string raw_json;                      ///< the line as stored

  /// Decisions and egress connections: allowed or refused; executions: how_it_ended() (timed_out,
  /// succeeded, or failed: everything else, cancelled included); rejected credentials: auth_rejected.
  [[nodiscard]] RecordOutcome record_outcome() const noexcept {
    if (type == "auth_rejected") return RecordOutcome::auth_rejected;
    if (type != "execution") return allowed ? RecordOutcome::allowed : RecordOutcome::refused;
    return how_it_ended(ran, exit_code.value_or(-1), timed_out);
  }
  /// The name of record_outcome(), as AuditFilter::outcome holds it.
  [[nodiscard]] std::string_view outcome() const noexcept { return to_string(record_outcome()); }
};

/// The matching records of one file, and counts. The summary counts cover the matching records;
/// lines, torn_lines and bad_lines cover the whole file.
struct AuditReport {
  std::vector<AuditEntry> entries;
  std::size_t lines = 0;       ///< every line read, torn and bad included
  std::size_t torn_lines = 0;  ///< 1 when the final line has no '\n' and does not parse (a crash mid-write)
  std::size_t bad_lines = 0;   ///< other lines that are not records
  std::size_t decisions = 0;
  std::size_t refused = 0;
  std::size_t executions = 0;
  std::size_t succeeded = 0;
  std::size_t failed = 0;
  std::size_t timed_out = 0;
  std::size_t auth_rejected = 0;  ///< calls refused for their credential
  std::size_t egress_allowed = 0;  ///< connections the egress proxy opened
  std::size_t egress_refused = 0;  ///< connection attempts it refused
};

/// What verify_audit_chain found.
struct AuditChainReport {
  std::size_t files = 0;
  std::size_t records = 0;    ///< records read (lines that parse as records)
  /// The hash of the last record: what the next record will link to. Nothing after the last
  /// record vouches for it, so an operator who keeps this value elsewhere can tell later whether
  /// it was changed.
  std::string last_hash;
  bool intact = true;         ///< every chained record follows the record before it
  /// When not intact: the first break, "<file>:<line>: ..." with what the verifier concludes.
  std::string problem;
  /// What is worth knowing but no break: a chain that starts mid-way (older files not given),
  /// lines that are not records (a write torn by a crash), records written before the chain.
  std::vector<std::string> notes;
};

/// Checks the hash chain of an audit log: each record's `prev` must be the SHA-256 of the record
/// line before it (the last record of the previous file for a file's first one). `files` are
/// given oldest first (audit.jsonl.1, then audit.jsonl). Stops at the first break and says which
/// record was changed, removed or reordered as far as the chain tells. Errc::io when a file
/// cannot be read; Errc::invalid_request for no files. Thread-safe.
[[nodiscard]] Result<AuditChainReport> verify_audit_chain(std::span<const std::filesystem::path> files);

/// Reads an audit log. Errc::invalid_request for an unknown filter outcome; Errc::io when the
/// file cannot be opened or read. Unparsable lines are counted, never fatal. Thread-safe.
[[nodiscard]] Result<AuditReport> read_audit_log(const std::filesystem::path& path, const AuditFilter& filter);

}  // namespace pagi_exec
