// SPDX-License-Identifier: Apache-2.0
// SqliteStore: the execution store in one SQLite file (WAL), surviving restarts and kill -9.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <vector>

#include "pagi_exec/execution_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace pagi_exec::detail {

/// Writes are synchronous, one transaction each, in WAL mode with synchronous=NORMAL: a record is
/// in the file's write-ahead log when record() returns, so it survives the process being killed
/// (not a power loss before the next checkpoint). One connection behind a mutex; SQLite gives the
/// sequences, so several processes may write one file. The writing connection never checkpoints
/// on its own (with synchronous=NORMAL that would happen inside the commit that crosses the
/// threshold, on the answering thread): checkpoint() does it, from a thread of the caller's.
class SqliteStore final : public ExecutionStore {
 public:
  /// Opens (or creates, with its folder) the file and migrates its schema; Errc::io naming the
  /// file and what SQLite said when it cannot.
  [[nodiscard]] static Result<std::shared_ptr<SqliteStore>> open(const StoreSettings& settings);
  ~SqliteStore() override;

  [[nodiscard]] Result<void> record(ExecutionRecord entry) override;
  /// One transaction for all of them (see ExecutionStore::record_all).
  [[nodiscard]] std::vector<Result<void>> record_all(std::vector<ExecutionRecord> entries) override;
  [[nodiscard]] Result<HistoryPage> query(const HistoryQuery& query) const override;
  [[nodiscard]] Result<std::optional<ExecutionRecord>> find(const std::string& execution_id) const override;
  [[nodiscard]] StoreHealth health() const override;

  /// Copies the write-ahead log into the database (a PASSIVE checkpoint) on a connection of its
  /// own, so writers are not held up; past restart_after_frames it then finishes the copy (a
  /// RESTART checkpoint, holding writers back at most checkpoint_wait). One caller at a time.
  /// Errc::io with what SQLite said.
  [[nodiscard]] Result<void> checkpoint();

  /// Records older than max_age_days go now (also done every age_check_every writes).
  [[nodiscard]] Result<void> apply_age_retention();

  static constexpr std::uint64_t age_check_every = 256;
  /// checkpoint(): a log of this many frames (pages) is copied completely, so that it starts
  /// again from its head (SQLite's own automatic checkpoint uses the same size).
  static constexpr int restart_after_frames = 1000;
  /// checkpoint(): the longest it waits for the writer and readers to let it finish.
  static constexpr std::chrono::milliseconds checkpoint_wait{20};

 private:
  struct Statements;
  explicit SqliteStore(StoreSettings settings, sqlite3* db) noexcept;
  [[nodiscard]] Result<void> migrate();
  [[nodiscard]] Result<void> load_state();
  // A record() waiting for the transaction that holds its record (group commit, see record()).
  struct Waiting {
    ExecutionRecord* record;
    std::optional<Result<void>> result;  // set before `woken` is released; none: write the next batch
    std::binary_semaphore woken{0};
  };
  [[nodiscard]] std::vector<Result<void>> write_batch(const std::vector<ExecutionRecord*>& records);
  [[nodiscard]] Result<void> write_locked(const std::vector<ExecutionRecord*>& records);
  [[nodiscard]] Result<void> insert_locked(ExecutionRecord& entry);
  [[nodiscard]] Result<void> trim_output_locked();
  [[nodiscard]] Result<void> age_retention_locked();
  [[nodiscard]] Result<sqlite3_stmt*> prepared(const std::string& sql) const;
  [[nodiscard]] Error failure(const std::string& what) const;

  StoreSettings settings_;
  sqlite3* db_;
  sqlite3* checkpoint_db_ = nullptr;  // checkpoint()'s connection, opened on its first call
  mutable std::mutex mutex_;
  mutable std::map<std::string, sqlite3_stmt*> statements_;  // by SQL text; finalized in the destructor
  std::uint64_t output_bytes_ = 0;  // captured output held by all rows
  std::uint64_t trim_from_ = 1;     // rows older than this hold no output
  std::uint64_t writes_ = 0;
  mutable std::mutex health_mutex_;  // guards the two below, so that health() never waits for a write
  std::uint64_t failed_writes_ = 0;
  std::string last_error_;          // of the last write, empty once one succeeds
  std::mutex batch_mutex_;          // guards waiting_ and writing_
  std::vector<Waiting*> waiting_;   // records that came while a transaction was being written
  bool writing_ = false;            // a caller writes a batch, or was just handed the next one
};

}  // namespace pagi_exec::detail
