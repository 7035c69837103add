// SPDX-License-Identifier: Apache-2.0
// ExecutionStore: where execution records are kept and read back (the memory ring, SQLite,
// PostgreSQL).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/execution_record.hpp"
#include "pagi_exec/notice.hpp"

namespace pagi_exec {

/// The memory ring's defaults (History): records kept, and captured output kept over all of them.
inline constexpr std::size_t default_history_capacity = 1000;
inline constexpr std::uint64_t default_history_output_budget = 16ULL << 20;
/// A durable store's queue of records it could not write yet (see StoreSettings): its defaults.
inline constexpr std::size_t default_queue_records = 4096;
inline constexpr std::uint64_t default_queue_bytes = 64ULL << 20;

/// Whether a store can take records now: a host reports it in its health.
struct StoreHealth {
  bool healthy = true;
  std::string detail;           ///< why not, or what it is ("sqlite /var/lib/pagi-exec/history.db")
  std::uint64_t failed_writes = 0;  ///< records that could not be stored since start
  bool operator==(const StoreHealth&) const = default;
};

/// The execution index. Every backend answers the same query the same way (filters, newest
/// first, next_before paging, max_page_bytes fitting), which tests/unit/execution_store_test.cpp
/// checks against each. All members are thread-safe.
///
/// A write may fail (a disk is full, a database is away): the caller must answer its request all
/// the same; the audit log stays the durable record, and health() says what is wrong.
class ExecutionStore {
 public:
  ExecutionStore() = default;
  ExecutionStore(const ExecutionStore&) = delete;
  ExecutionStore& operator=(const ExecutionStore&) = delete;
  virtual ~ExecutionStore() = default;

  /// Adds a record; its sequence is assigned here, one more than any before (across restarts
  /// for a durable store). A record is kept once this returns success.
  [[nodiscard]] virtual Result<void> record(ExecutionRecord entry) = 0;

  /// What record_then() calls with record()'s result.
  using Recorded = std::function<void(Result<void>)>;
  /// Adds a record without waiting for it: `done` gets the result record() would return, once
  /// the record is kept (or is not), before this returns or later on a thread of the store's.
  /// A durable store writes the records that come meanwhile together, in one transaction, and
  /// no thread waits for any of them. `done` must not block. The default calls record(), then
  /// `done`.
  virtual void record_then(ExecutionRecord entry, Recorded done) { done(record(std::move(entry))); }

  /// Adds records in order, in one transaction where the store has them; each record's result.
  /// Should the transaction fail, each record is tried alone, so one the store refuses does not
  /// cost the others theirs. The default calls record() for each.
  [[nodiscard]] virtual std::vector<Result<void>> record_all(std::vector<ExecutionRecord> entries);
  /// The records matching `query`, newest first, one page.
  [[nodiscard]] virtual Result<HistoryPage> query(const HistoryQuery& query) const = 0;
  /// The record with this execution id, if it is still kept.
  [[nodiscard]] virtual Result<std::optional<ExecutionRecord>> find(const std::string& execution_id) const = 0;
  [[nodiscard]] virtual StoreHealth health() const = 0;
};

/// What a host keeps its executions in (TOOLS_HISTORY and its retention settings).
struct StoreSettings {
  enum class Kind : std::uint8_t { memory, sqlite, postgresql } kind = Kind::memory;
  std::filesystem::path path;  ///< sqlite: the database file (absolute)
  /// postgresql: the libpq connection URI, password included: print it only through to_string,
  /// which masks the password.
  std::string uri;
  /// postgresql: connections kept open to the database, shared by all requests.
  std::size_t pool_size = 4;
  /// Records kept: the memory ring's capacity, or the most a durable store keeps.
  std::size_t max_records = default_history_capacity;
  /// sqlite, postgresql: records older than this many days are removed; 0: kept whatever their age.
  std::uint32_t max_age_days = 0;
  /// Captured output kept over all records; beyond it the oldest records lose their output.
  std::uint64_t output_budget_bytes = default_history_output_budget;
  /// sqlite: records waiting while the store cannot take them, at most this many and this many
  /// bytes (encoded_size_bound); beyond it the oldest waiting record is dropped and the gap stated.
  std::size_t queue_records = default_queue_records;
  std::uint64_t queue_bytes = default_queue_bytes;
  bool operator==(const StoreSettings&) const = default;
};

/// "memory", "sqlite:/absolute/path.db" or a "postgresql://" (or "postgres://") connection URI
/// into `settings` (its other fields unchanged); Errc::invalid_config saying what is accepted for
/// anything else.
[[nodiscard]] Result<StoreSettings> parse_store_location(std::string_view text, StoreSettings settings);
/// The location as parse_store_location reads it back, but with a PostgreSQL password shown as
/// "***": safe to log.
[[nodiscard]] std::string to_string(const StoreSettings& settings);
/// `uri` with the password it holds (after "user:" or as a password= parameter) shown as "***".
[[nodiscard]] std::string masked_uri(std::string_view uri);

/// Where a store tells its operator what happened after it opened (records it had to drop, the
/// database gone away and back); called from the store's own thread.
using NoticeSink = std::function<void(const Notices&)>;

/// Opens the store `settings` name: a new memory ring, the SQLite file (created with its folder
/// when missing), or a PostgreSQL database (reached within a few seconds, or Errc::io); a durable
/// store's schema is migrated to the current version. A durable store comes behind a
/// bounded write queue (queue_records, queue_bytes): while the database cannot take records,
/// record() queues them and a thread of the store writes them, in order, once it can; health()
/// says so meanwhile, and `notify` hears of records dropped from a full queue.
[[nodiscard]] Result<std::shared_ptr<ExecutionStore>> open_execution_store(const StoreSettings& settings,
                                                                           NoticeSink notify = {});

/// Node ids name the server that ran an execution (TOOLS_NODE_ID): 1 to 63 bytes of letters,
/// digits, '.', '-' and '_', starting with a letter or digit. Errc::invalid_config otherwise.
inline constexpr std::size_t max_node_id_bytes = 63;
[[nodiscard]] Result<void> validate_node_id(std::string_view node);
/// `configured` when set, else the host name (uname -n), validated: Errc::invalid_config saying
/// which of the two is no node id.
[[nodiscard]] Result<std::string> node_id_or_host_name(std::string_view configured);

}  // namespace pagi_exec
