// SPDX-License-Identifier: Apache-2.0
// SqliteStore: schema migrations at open, one prepared INSERT per record, paging in SQL.
#include "sqlite_store.hpp"

#include "record_encoding.hpp"
#include "sqlite_migrations.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <sqlite3.h>

namespace pagi_exec::detail {
namespace {

using Clock = std::chrono::system_clock;

// Binds by position, counting from 1, and resets the statement when done with it.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  Binder& blob(std::string_view text) {
    // SQLITE_TRANSIENT: SQLite copies, so temporaries may be bound.
    sqlite3_bind_blob64(stmt_, ++index_, text.data(), text.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Binder& text(std::string_view text) {
    sqlite3_bind_text64(stmt_, ++index_, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
  }
  Binder& null() {
    sqlite3_bind_null(stmt_, ++index_);
    return *this;
  }
  Binder& integer(std::int64_t value) {
    sqlite3_bind_int64(stmt_, ++index_, value);
    return *this;
  }

 private:
  sqlite3_stmt* stmt_;
  int index_ = 0;
};

// Resets a statement however its use ends, so the connection holds no open read.
struct Reset {
  sqlite3_stmt* stmt;
  ~Reset() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

std::string column_bytes(sqlite3_stmt* stmt, int column) {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, column));
  const auto size = sqlite3_column_bytes(stmt, column);
  return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string column_text(sqlite3_stmt* stmt, int column) {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))) : std::string();
}

constexpr const char* record_columns =
    "sequence, execution_id, node, twin_id, job_id, ns, tool, args, arg_count, args_truncated, allowed, reason, "
    "rule, notes, ran, exit_code, signal, timed_out, cancelled, limit_hit, isolation, message, out_lines, "
    "out_truncated, out_total_bytes, err_lines, err_truncated, err_total_bytes, output_dropped, cpu_user_us, "
    "cpu_system_us, max_rss_bytes, peak_memory_bytes, elapsed_us, has_workspace, workspace_bytes, "
    "workspace_entries, workspace_quota_bytes, started_us, finished_us, has_egress, egress_allowed, egress_refused, "
    "egress_bytes_up, egress_bytes_down";

// A result row of a SELECT of record_columns, read column after column.
struct StatementRow {
  sqlite3_stmt* stmt;
  int column = 0;
  std::int64_t integer() { return sqlite3_column_int64(stmt, column++); }
  bool flag() { return sqlite3_column_int64(stmt, column++) != 0; }
  std::string bytes() { return column_bytes(stmt, column++); }
  std::string text() { return column_text(stmt, column++); }
};

ExecutionRecord read_record(sqlite3_stmt* s) {
  StatementRow row{s};
  return record_from_row(row);
}

// The WHERE clause of a query and its values, in binding order.
struct Filter {
  std::string sql;
  std::vector<std::string> blobs;  // twin, job
  std::optional<std::string> ended;
  std::uint64_t before = 0;
};

Filter filter_of(const HistoryQuery& query) {
  Filter f;
  std::vector<std::string> terms;
  if (query.before_sequence != 0) {
    terms.emplace_back("sequence < ?");
    f.before = query.before_sequence;
  }
  if (!query.twin_id.empty()) {
    terms.emplace_back("twin_id = ?");
    f.blobs.push_back(query.twin_id);
  }
  if (!query.job_id.empty()) {
    terms.emplace_back("job_id = ?");
    f.blobs.push_back(query.job_id);
  }
  if (query.outcome) {
    switch (*query.outcome) {
      case RecordOutcome::allowed: terms.emplace_back("allowed = 1"); break;
      case RecordOutcome::refused: terms.emplace_back("allowed = 0"); break;
      case RecordOutcome::succeeded:
      case RecordOutcome::failed:
      case RecordOutcome::timed_out:
        terms.emplace_back("allowed = 1 AND ended = ?");
        f.ended = std::string(to_string(*query.outcome));
        break;
      case RecordOutcome::auth_rejected: terms.emplace_back("0"); break;  // never in a store
    }
  }
  for (std::size_t i = 0; i < terms.size(); ++i) f.sql += (i == 0 ? " WHERE " : " AND ") + terms[i];
  return f;
}

}  // namespace

SqliteStore::SqliteStore(StoreSettings settings, sqlite3* db) noexcept : settings_(std::move(settings)), db_(db) {}

SqliteStore::~SqliteStore() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(checkpoint_db_);
  sqlite3_close_v2(db_);
}

Error SqliteStore::failure(const std::string& what) const {
  return Error{.code = Errc::io, .context = "history database " + settings_.path.string() + ": " + what + ": " +
                                           sqlite3_errmsg(db_)};
}

Result<std::shared_ptr<SqliteStore>> SqliteStore::open(const StoreSettings& settings) {
  const auto where = "history database " + settings.path.string();
  if (!settings.path.is_absolute()) return fail(Errc::invalid_config, where + ": not an absolute path");
  if (settings.path.has_parent_path()) {
    // A folder made here is the server's alone: the records hold every twin's commands and output.
    std::error_code ec;
    if (std::filesystem::create_directories(settings.path.parent_path(), ec)) {
      std::filesystem::permissions(settings.path.parent_path(), std::filesystem::perms::owner_all, ec);
    }
    if (ec) return fail(Errc::io, where + ": create its folder: " + ec.message(), ec.value());
  }
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(settings.path.c_str(), &db,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (opened != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(opened);
    sqlite3_close_v2(db);
    return fail(Errc::io, where + ": open: " + why);
  }
  std::shared_ptr<SqliteStore> store(new SqliteStore(settings, db));
  sqlite3_busy_timeout(db, 5000);  // another process (a backup, sqlite3(1)) may hold the lock a moment
  // wal_autocheckpoint=0: checkpoint() runs them, off the writer (see the class comment).
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=OFF",
                             "PRAGMA wal_autocheckpoint=0"}) {
    if (sqlite3_exec(db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) return tl::unexpected(store->failure(pragma));
  }
  if (auto migrated = store->migrate(); !migrated) return error_of(migrated);
  if (auto loaded = store->load_state(); !loaded) return error_of(loaded);
  return store;
}

// Each migration and its new user_version in one transaction: a crash leaves the old version.
Result<void> SqliteStore::migrate() {
  sqlite3_stmt* version_stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &version_stmt, nullptr) != SQLITE_OK) {
    return tl::unexpected(failure("read the schema version"));
  }
  std::int64_t version = 0;
  if (sqlite3_step(version_stmt) == SQLITE_ROW) version = sqlite3_column_int64(version_stmt, 0);
  sqlite3_finalize(version_stmt);
  if (version > static_cast<std::int64_t>(sqlite_migrations.size())) {
    return fail(Errc::invalid_config, "history database " + settings_.path.string() + " has schema version " +
                                          std::to_string(version) + ", newer than this server's " +
                                          std::to_string(sqlite_migrations.size()));
  }
  for (auto v = static_cast<std::size_t>(version); v < sqlite_migrations.size(); ++v) {
    const auto sql = "BEGIN IMMEDIATE;" + std::string(sqlite_migrations[v]) +
                     "PRAGMA user_version = " + std::to_string(v + 1) + ";COMMIT;";
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      auto error = failure("migrate to schema version " + std::to_string(v + 1));
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return tl::unexpected(std::move(error));
    }
  }
  return {};
}

Result<sqlite3_stmt*> SqliteStore::prepared(const std::string& sql) const {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return tl::unexpected(failure("prepare"));
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

// The output held by all rows and where output trimming resumes; then age retention.
Result<void> SqliteStore::load_state() {
  std::lock_guard lock(mutex_);
  const auto one = [&](const std::string& sql) -> Result<std::uint64_t> {
    auto stmt = prepared(sql);
    if (!stmt) return error_of(stmt);
    Reset reset{*stmt};
    const int step = sqlite3_step(*stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) return tl::unexpected(failure("read the store's state"));
    return step == SQLITE_ROW ? static_cast<std::uint64_t>(sqlite3_column_int64(*stmt, 0)) : 0;
  };
  auto held = one("SELECT coalesce(sum(output_bytes), 0) FROM executions");
  auto first = one("SELECT coalesce(min(sequence), 1) FROM executions WHERE output_bytes > 0");
  if (!held) return error_of(held);
  if (!first) return error_of(first);
  output_bytes_ = *held;
  trim_from_ = *first;
  return age_retention_locked();
}

// Group commit: a caller that comes while a transaction is being written waits, and when that
// one is done, the first of the callers that waited writes all of them in one transaction. Each
// still returns only once its own record is committed (or failed); concurrent callers share a
// transaction's pages and its commit instead of writing one transaction each behind the store's
// lock. Each waiter is woken once, by the writer that holds its result or hands it the next batch.
Result<void> SqliteStore::record(ExecutionRecord entry) {
  Waiting mine{&entry, std::nullopt};
  {
    std::unique_lock lock(batch_mutex_);
    waiting_.push_back(&mine);
    if (writing_) {
      lock.unlock();
      mine.woken.acquire();
      if (mine.result) return std::move(*mine.result);
    } else {
      writing_ = true;
    }
  }
  std::vector<Waiting*> batch;
  {
    const std::lock_guard lock(batch_mutex_);
    batch.swap(waiting_);
  }
  std::vector<ExecutionRecord*> records;
  for (const auto* waiting : batch) records.push_back(waiting->record);
  auto results = write_batch(records);
  Waiting* next = nullptr;
  {
    const std::lock_guard lock(batch_mutex_);
    if (waiting_.empty()) {
      writing_ = false;
    } else {
      next = waiting_.front();  // it writes the next batch (writing_ stays true)
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i]->result = std::move(results[i]);
    if (batch[i] != &mine) batch[i]->woken.release();  // it may return at once: not touched again
  }
  if (next != nullptr) next->woken.release();
  return std::move(*mine.result);
}

std::vector<Result<void>> SqliteStore::record_all(std::vector<ExecutionRecord> entries) {
  std::vector<ExecutionRecord*> records;
  for (auto& entry : entries) records.push_back(&entry);
  return write_batch(records);
}

// One transaction for the batch; should it fail, each record alone, so that a record the store
// refuses does not cost the others theirs. Each record's result, in order.
std::vector<Result<void>> SqliteStore::write_batch(const std::vector<ExecutionRecord*>& records) {
  std::vector<Result<void>> results;
  if (records.empty()) return results;
  {
    const std::lock_guard lock(mutex_);
    if (auto all = write_locked(records); all || records.size() == 1) {
      results.assign(records.size(), all);
    } else {
      for (auto* record : records) results.push_back(write_locked({record}));
    }
  }
  const std::lock_guard lock(health_mutex_);
  for (const auto& written : results) {
    if (written) {
      last_error_.clear();
    } else {
      ++failed_writes_;
      last_error_ = written.error().message();
    }
  }
  return results;
}

// One transaction: each row and the retention it triggers (the oldest rows beyond max_records,
// the output budget; every age_check_every writes, the rows past max_age_days).
Result<void> SqliteStore::write_locked(const std::vector<ExecutionRecord*>& records) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(failure("begin"));
  }
  const auto saved_bytes = output_bytes_;  // restored with the rows when the transaction is undone
  const auto saved_trim = trim_from_;
  Result<void> done;
  for (auto* record : records) {
    done = insert_locked(*record);
    if (!done) break;
  }
  if (done && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) done = tl::unexpected(failure("commit"));
  if (!done) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    output_bytes_ = saved_bytes;
    trim_from_ = saved_trim;
  }
  return done;
}

// One row and the retention it triggers, inside write_locked's transaction.
Result<void> SqliteStore::insert_locked(ExecutionRecord& r) {
  const auto output = output_size(r);
  auto insert = prepared(std::string("INSERT INTO executions (") + record_columns +
                         ", output_bytes, ended) VALUES (" + [] {
                           std::string marks;
                           for (int i = 0; i < 47; ++i) marks += i == 0 ? "?" : ", ?";
                           return marks;
                         }() + ")");
  if (!insert) return error_of(insert);
  Reset reset{*insert};
  const auto workspace = r.workspace.value_or(WorkspaceUsage{});
  const auto egress = r.egress.value_or(EgressSummary{});
  Binder(*insert)
      .null()  // AUTOINCREMENT gives the sequence inside the transaction: right with several writers
      .blob(r.execution_id).blob(r.node).blob(r.twin_id).blob(r.job_id).blob(r.ns).blob(r.tool)
      .blob(encode_list(r.args)).integer(static_cast<std::int64_t>(r.arg_count)).integer(r.args_truncated)
      .integer(r.allowed).blob(r.reason).blob(r.rule).blob(encode_list(r.notes))
      .integer(r.ran).integer(r.exit_code).integer(r.signal).integer(r.timed_out).integer(r.cancelled)
      .text(to_string(r.limit_hit)).text(to_string(r.isolation)).blob(r.message)
      .blob(encode_list(r.out.lines)).integer(r.out.truncated).integer(static_cast<std::int64_t>(r.out.total_bytes))
      .blob(encode_list(r.err.lines)).integer(r.err.truncated).integer(static_cast<std::int64_t>(r.err.total_bytes))
      .integer(r.output_dropped)
      .integer(r.usage.cpu_user.count()).integer(r.usage.cpu_system.count())
      .integer(static_cast<std::int64_t>(r.usage.max_rss_bytes))
      .integer(static_cast<std::int64_t>(r.usage.peak_memory_bytes))
      .integer(r.elapsed.count()).integer(r.workspace.has_value())
      .integer(static_cast<std::int64_t>(workspace.bytes)).integer(static_cast<std::int64_t>(workspace.entries))
      .integer(static_cast<std::int64_t>(workspace.quota_bytes))
      .integer(micros(r.started)).integer(micros(r.finished))
      .integer(r.egress.has_value()).integer(egress.allowed).integer(egress.refused)
      .integer(static_cast<std::int64_t>(egress.bytes_up)).integer(static_cast<std::int64_t>(egress.bytes_down))
      .integer(static_cast<std::int64_t>(output))
      .text(to_string(how_it_ended(r.ran, r.exit_code, r.timed_out)));
  if (sqlite3_step(*insert) != SQLITE_DONE) return tl::unexpected(failure("insert"));
  const auto sequence = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_));
  // Count retention: by key, a row per write as sequences are given one after another.
  if (sequence > settings_.max_records) {
    auto drop = prepared("DELETE FROM executions WHERE sequence <= ? RETURNING output_bytes");
    if (!drop) return error_of(drop);
    Reset drop_reset{*drop};
    Binder(*drop).integer(static_cast<std::int64_t>(sequence - settings_.max_records));
    int step = 0;
    std::uint64_t dropped = 0;
    while ((step = sqlite3_step(*drop)) == SQLITE_ROW) dropped += static_cast<std::uint64_t>(sqlite3_column_int64(*drop, 0));
    if (step != SQLITE_DONE) return tl::unexpected(failure("remove the oldest record"));
    output_bytes_ -= std::min(output_bytes_, dropped);
  }
  output_bytes_ += output;
  r.sequence = sequence;
  if (auto trimmed = trim_output_locked(); !trimmed) return trimmed;
  if (++writes_ % age_check_every == 0) return age_retention_locked();
  return {};
}

// As the memory ring: the oldest rows lose their output until the budget holds; trim_from_ only
// moves forward, so each row is trimmed at most once.
Result<void> SqliteStore::trim_output_locked() {
  while (output_bytes_ > settings_.output_budget_bytes) {
    auto oldest = prepared("SELECT sequence, output_bytes FROM executions WHERE sequence >= ? AND output_bytes > 0 "
                           "ORDER BY sequence LIMIT 1");
    if (!oldest) return error_of(oldest);
    Reset reset{*oldest};
    Binder(*oldest).integer(static_cast<std::int64_t>(trim_from_));
    const int step = sqlite3_step(*oldest);
    if (step == SQLITE_DONE) break;
    if (step != SQLITE_ROW) return tl::unexpected(failure("find output to drop"));
    const auto sequence = static_cast<std::uint64_t>(sqlite3_column_int64(*oldest, 0));
    const auto bytes = static_cast<std::uint64_t>(sqlite3_column_int64(*oldest, 1));
    auto clear = prepared("UPDATE executions SET out_lines = x'', err_lines = x'', output_bytes = 0, "
                          "output_dropped = 1 WHERE sequence = ?");
    if (!clear) return error_of(clear);
    Reset clear_reset{*clear};
    Binder(*clear).integer(static_cast<std::int64_t>(sequence));
    if (sqlite3_step(*clear) != SQLITE_DONE) return tl::unexpected(failure("drop output"));
    output_bytes_ -= std::min(output_bytes_, bytes);
    trim_from_ = sequence + 1;
  }
  return {};
}

Result<void> SqliteStore::apply_age_retention() {
  std::lock_guard lock(mutex_);
  return age_retention_locked();
}

Result<void> SqliteStore::age_retention_locked() {
  if (settings_.max_age_days == 0) return {};
  const auto cutoff = Clock::now() - std::chrono::hours(24) * settings_.max_age_days;
  auto drop = prepared("DELETE FROM executions WHERE finished_us < ? RETURNING output_bytes");
  if (!drop) return error_of(drop);
  Reset reset{*drop};
  Binder(*drop).integer(micros(cutoff));
  int step = 0;
  std::uint64_t dropped = 0;
  while ((step = sqlite3_step(*drop)) == SQLITE_ROW) dropped += static_cast<std::uint64_t>(sqlite3_column_int64(*drop, 0));
  if (step != SQLITE_DONE) return tl::unexpected(failure("remove records past their age"));
  output_bytes_ -= std::min(output_bytes_, dropped);
  return {};
}

// PASSIVE copies what it can without waiting for readers or writers; a later one copies the
// rest, and once a checkpoint has copied all of it the next writer starts the log from its head.
Result<void> SqliteStore::checkpoint() {
  // A new connection knows the file is in WAL mode only once it has read it: until then a
  // checkpoint does nothing (and says the log has -1 frames).
  if (checkpoint_db_ == nullptr &&
      (sqlite3_open_v2(settings_.path.c_str(), &checkpoint_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                       nullptr) != SQLITE_OK ||
       sqlite3_busy_timeout(checkpoint_db_, static_cast<int>(checkpoint_wait.count())) != SQLITE_OK ||
       sqlite3_exec(checkpoint_db_, "PRAGMA journal_mode", nullptr, nullptr, nullptr) != SQLITE_OK)) {
    auto error = fail(Errc::io, "history database " + settings_.path.string() + ": open for checkpoints: " +
                                    (checkpoint_db_ ? sqlite3_errmsg(checkpoint_db_) : "out of memory"));
    sqlite3_close_v2(checkpoint_db_);
    checkpoint_db_ = nullptr;
    return error;
  }
  int log_frames = 0;
  int done = sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, nullptr);
  // Under steady writes a passive checkpoint never catches up (frames are added while it copies),
  // and the log starts again from its head only once all of it was copied: past this size,
  // RESTART copies the few frames written since, holding writers back for that moment only (at
  // most checkpoint_wait; then the next round tries again).
  if (done == SQLITE_OK && log_frames >= restart_after_frames) {
    done = sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  }
  if (done != SQLITE_OK && done != SQLITE_BUSY) {  // BUSY: writers or readers did not let it finish
    return fail(Errc::io, "history database " + settings_.path.string() + ": checkpoint: " +
                              sqlite3_errmsg(checkpoint_db_));
  }
  return {};
}

Result<HistoryPage> SqliteStore::query(const HistoryQuery& query) const {
  std::lock_guard lock(mutex_);
  PageFiller filler(query);
  const auto filter = filter_of(query);
  auto stmt = prepared(std::string("SELECT ") + record_columns + " FROM executions" + filter.sql +
                       " ORDER BY sequence DESC LIMIT ?");
  if (!stmt) return error_of(stmt);
  Reset reset{*stmt};
  Binder bind(*stmt);
  if (filter.before != 0) bind.integer(static_cast<std::int64_t>(filter.before));
  for (const auto& blob : filter.blobs) bind.blob(blob);
  if (filter.ended) bind.text(*filter.ended);
  bind.integer(static_cast<std::int64_t>(filler.rows_wanted()));
  int step = 0;
  while ((step = sqlite3_step(*stmt)) == SQLITE_ROW) {
    if (!filler.add(read_record(*stmt))) break;
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE) return tl::unexpected(failure("query"));
  return filler.take();
}

Result<std::optional<ExecutionRecord>> SqliteStore::find(const std::string& execution_id) const {
  std::lock_guard lock(mutex_);
  auto stmt = prepared(std::string("SELECT ") + record_columns +
                       " FROM executions WHERE execution_id = ? ORDER BY sequence DESC LIMIT 1");
  if (!stmt) return error_of(stmt);
  Reset reset{*stmt};
  Binder(*stmt).blob(execution_id);
  const int step = sqlite3_step(*stmt);
  if (step == SQLITE_ROW) return std::optional<ExecutionRecord>(read_record(*stmt));
  if (step != SQLITE_DONE) return tl::unexpected(failure("find"));
  return std::optional<ExecutionRecord>();
}

// Never behind a write: HealthCheck answers on grpc's own threads.
StoreHealth SqliteStore::health() const {
  const std::lock_guard lock(health_mutex_);
  return {.healthy = last_error_.empty(),
          .detail = last_error_.empty() ? "sqlite " + settings_.path.string() : last_error_,
          .failed_writes = failed_writes_};
}

}  // namespace pagi_exec::detail
