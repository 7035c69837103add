// SPDX-License-Identifier: Apache-2.0
// PostgresStore: a pool of libpqxx connections, migrations under an advisory lock, one statement
// per record, paging in SQL.
#include "postgres_store.hpp"

#include "postgres_migrations.hpp"
#include "record_encoding.hpp"

#include <array>
#include <chrono>
#include <utility>

#include <pqxx/pqxx>

namespace pagi_exec::detail {
namespace {

using Clock = std::chrono::system_clock;

// pg_advisory_xact_lock's key for migrations: any constant no other program on the database uses
// ("pagiexec" in ASCII).
constexpr std::int64_t migration_lock_key = 0x7061676965786563;

// A database that does not answer must not hold a request for libpq's defaults (forever, or the
// kernel's retransmission timeout of a quarter of an hour on a connection whose peer vanished):
// connect within 2 s, and give up on unacknowledged data after 5 s (tcp_user_timeout, see
// tcp(7) TCP_USER_TIMEOUT). A URI that sets either keeps its own.
std::string with_timeouts(std::string uri) {
  for (const std::string_view parameter : {"connect_timeout=2", "tcp_user_timeout=5000"}) {
    const auto name = parameter.substr(0, parameter.find('=') + 1);
    if (uri.find(name) != std::string::npos) continue;
    uri += (uri.find('?') == std::string::npos ? "?" : "&") + std::string(parameter);
  }
  return uri;
}

// Per session, unless the URI's options name them. statement_timeout: a database that takes a
// connection but does not answer (a lock held elsewhere, an overloaded server) fails a write in
// 5 s. synchronous_commit=off: a commit returns once its WAL is with the database's kernel, not on
// its disk; a record survives this server and PostgreSQL being killed, not the database host losing
// power in the next fraction of a second (as SQLite's synchronous=NORMAL). Waiting for the disk
// adds a flush to every answer (milliseconds), and the audit log is the durable record.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> session_settings = {{
    {"statement_timeout", "SET statement_timeout = 5000"},
    {"synchronous_commit", "SET synchronous_commit = off"},
}};

// libpqxx's messages end with a newline and may span lines: one line for a log field.
std::string one_line(std::string_view text) {
  std::string out;
  for (char c : text) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

constexpr const char* record_columns =
    "sequence, execution_id, node, twin_id, job_id, ns, tool, args, arg_count, args_truncated, allowed, reason, "
    "rule, notes, ran, exit_code, signal, timed_out, cancelled, limit_hit, isolation, message, out_lines, "
    "out_truncated, out_total_bytes, err_lines, err_truncated, err_total_bytes, output_dropped, cpu_user_us, "
    "cpu_system_us, max_rss_bytes, peak_memory_bytes, elapsed_us, has_workspace, workspace_bytes, "
    "workspace_entries, workspace_quota_bytes, started_us, finished_us, has_egress, egress_allowed, egress_refused, "
    "egress_bytes_up, egress_bytes_down";

// The types of executions' columns after `sequence`, in table order: record_execution() takes the
// row as ROW(0, $1::bytea, ...)::executions.
constexpr std::array<std::string_view, 46> insert_types = {
    "bytea", "bytea", "bytea", "bytea", "bytea", "bytea",    // execution_id .. tool
    "bytea", "bigint", "boolean", "boolean", "bytea", "bytea", "bytea",  // args .. notes
    "boolean", "integer", "integer", "boolean", "boolean", "text", "text", "bytea",  // ran .. message
    "bytea", "boolean", "bigint", "bytea", "boolean", "bigint", "boolean",  // out_lines .. output_dropped
    "bigint", "bigint", "bigint", "bigint", "bigint",  // cpu_user_us .. elapsed_us
    "boolean", "bigint", "bigint", "bigint",  // has_workspace .. workspace_quota_bytes
    "bigint", "bigint", "bigint", "text",     // started_us, finished_us, output_bytes, ended
    "boolean", "bigint", "bigint", "bigint", "bigint",  // has_egress .. egress_bytes_down (migration 2)
};

std::string record_sql() {
  std::string sql = "SELECT record_execution(ROW(0";
  for (std::size_t i = 0; i < insert_types.size(); ++i) {
    sql += ", $" + std::to_string(i + 1) + "::" + std::string(insert_types[i]);
  }
  const auto n = insert_types.size();
  return sql + ")::executions, $" + std::to_string(n + 1) + "::bigint, $" + std::to_string(n + 2) + "::bigint, $" +
         std::to_string(n + 3) + "::bigint)";
}

// One query shape for every filter: an unnamed statement is planned with its values, so the
// terms that do not apply fold away and the indexes serve the ones that do.
std::string query_sql() {
  return std::string("SELECT ") + record_columns +
         " FROM executions WHERE ($1::bigint = 0 OR sequence < $1::bigint)"
         " AND ($2::bytea = '' OR twin_id = $2::bytea) AND ($3::bytea = '' OR job_id = $3::bytea)"
         " AND CASE $4::integer WHEN 0 THEN true WHEN 1 THEN allowed WHEN 2 THEN NOT allowed"
         " WHEN 3 THEN allowed AND ended = $5::text ELSE false END"
         " ORDER BY sequence DESC LIMIT $6::bigint";
}

// The outcome filter as query_sql's $4 and $5.
std::pair<int, std::string> outcome_terms(const std::optional<RecordOutcome>& outcome) {
  if (!outcome) return {0, ""};
  switch (*outcome) {
    case RecordOutcome::allowed: return {1, ""};
    case RecordOutcome::refused: return {2, ""};
    case RecordOutcome::succeeded:
    case RecordOutcome::failed:
    case RecordOutcome::timed_out: return {3, std::string(to_string(*outcome))};
    case RecordOutcome::auth_rejected: return {4, ""};  // never in a store
  }
  return {4, ""};
}

std::string bytes_of(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

// A result row of a SELECT of record_columns, read column after column.
struct ResultRow {
  const pqxx::row& row;
  pqxx::row::size_type column = 0;
  std::int64_t integer() { return row[column++].as<std::int64_t>(); }
  bool flag() { return row[column++].as<bool>(); }
  std::string bytes() { return bytes_of(row[column++]); }
  std::string text() { return row[column++].as<std::string>(); }
};

ExecutionRecord read_record(const pqxx::row& row) {
  ResultRow cursor{row};
  return record_from_row(cursor);
}

std::int64_t signed_of(std::uint64_t value) {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(value, INT64_MAX));
}

std::int64_t age_cutoff_us(const StoreSettings& settings) {
  if (settings.max_age_days == 0) return 0;
  return micros(Clock::now() - std::chrono::hours(24) * settings.max_age_days);
}

}  // namespace

struct PostgresStore::Connection {
  pqxx::connection db;
  explicit Connection(const std::string& conninfo) : db(conninfo) {}
};

// A connection out of the pool for one call: returned at scope exit, or dropped when it broke
// (the next lease opens a new one).
class PostgresStore::Lease {
 public:
  Lease(const PostgresStore& store, std::unique_ptr<Connection> connection) noexcept
      : store_(store), connection_(std::move(connection)) {}
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    std::lock_guard lock(store_.mutex_);
    --store_.leased_;
    if (connection_ && connection_->db.is_open() && !broken_) store_.idle_.push_back(std::move(connection_));
    store_.returned_.notify_one();
  }
  pqxx::connection& operator*() const noexcept { return connection_->db; }
  void broke() noexcept { broken_ = true; }

  // An open connection, waiting while all pool_size are leased. Connecting happens outside the
  // lock, so a database that does not answer holds only the caller.
  static Result<std::unique_ptr<Lease>> take(const PostgresStore& store) {
    {
      std::unique_lock lock(store.mutex_);
      store.returned_.wait(lock, [&] { return !store.idle_.empty() || store.leased_ < store.settings_.pool_size; });
      ++store.leased_;
      if (!store.idle_.empty()) {
        auto connection = std::move(store.idle_.back());
        store.idle_.pop_back();
        return std::make_unique<Lease>(store, std::move(connection));
      }
    }
    auto lease = std::make_unique<Lease>(store, nullptr);
    try {
      lease->connection_ = std::make_unique<Connection>(store.conninfo_);
      auto& db = lease->connection_->db;
      db.prepare("record", record_sql());
      db.prepare("find", std::string("SELECT ") + record_columns +
                             " FROM executions WHERE execution_id = $1 ORDER BY sequence DESC LIMIT 1");
      db.prepare("page", query_sql());
      pqxx::nontransaction session(db);
      for (const auto& [name, statement] : session_settings) {
        if (store.settings_.uri.find(name) == std::string::npos) session.exec(std::string(statement));
      }
    } catch (const std::exception& e) {
      return tl::unexpected(store.failure("connect", e));
    }
    return lease;
  }

 private:
  const PostgresStore& store_;
  std::unique_ptr<Connection> connection_;
  bool broken_ = false;
};

// A connection that broke is not returned to the pool: the next call opens a new one.
template <class T, class Work>
Result<T> PostgresStore::run(const std::string& what, Work&& work) const {
  auto lease = Lease::take(*this);
  if (!lease) return tl::unexpected(lease.error());
  try {
    return work(***lease);
  } catch (const pqxx::broken_connection& e) {
    (*lease)->broke();
    return tl::unexpected(failure(what, e));
  } catch (const std::exception& e) {
    return tl::unexpected(failure(what, e));
  }
}

PostgresStore::PostgresStore(StoreSettings settings)
    : settings_(std::move(settings)),
      conninfo_(with_timeouts(settings_.uri)),
      shown_("postgresql " + masked_uri(settings_.uri)) {
  if (settings_.pool_size == 0) settings_.pool_size = 1;
}

PostgresStore::~PostgresStore() = default;

Error PostgresStore::failure(const std::string& what, const std::exception& cause) const {
  return Error{.code = Errc::io, .context = "history database " + masked_uri(settings_.uri) + ": " + what + ": " +
                                           one_line(cause.what())};
}

Result<std::shared_ptr<PostgresStore>> PostgresStore::open(const StoreSettings& settings) {
  std::shared_ptr<PostgresStore> store(new PostgresStore(settings));
  if (auto migrated = store->migrate(); !migrated) return error_of(migrated);
  if (auto aged = store->apply_age_retention(); !aged) return error_of(aged);
  return store;
}

// All migrations in one transaction after pg_advisory_xact_lock: a second replica waits for the
// first to commit, then finds the schema current. A failure leaves the old version.
Result<void> PostgresStore::migrate() {
  return run<void>("migrate the schema", [&](pqxx::connection& connection) -> Result<void> {
        pqxx::work work(connection);
        work.exec("SET LOCAL statement_timeout = 0");  // waiting for another server's migration
        work.exec_params("SELECT pg_advisory_xact_lock($1)", migration_lock_key);
        work.exec("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)");
        const auto version = work.exec1("SELECT coalesce(max(version), 0) FROM schema_version")[0].as<std::size_t>();
        if (version > postgres_migrations.size()) {
          return fail(Errc::invalid_config, "history database " + masked_uri(settings_.uri) + " has schema version " +
                                                std::to_string(version) + ", newer than this server's " +
                                                std::to_string(postgres_migrations.size()));
        }
        for (auto v = version; v < postgres_migrations.size(); ++v) {
          work.exec(std::string(postgres_migrations[v]));
          work.exec_params("INSERT INTO schema_version VALUES ($1)", static_cast<int>(v + 1));
        }
        work.commit();
        return {};
      });
}

void PostgresStore::note_write(const Result<void>& written) {
  std::lock_guard lock(mutex_);
  if (written) {
    last_error_.clear();
  } else {
    ++failed_writes_;
    last_error_ = written.error().message();
  }
}

Result<void> PostgresStore::record(ExecutionRecord r) {
  auto written = run<void>("insert", [&](pqxx::connection& connection) -> Result<void> {
        const auto workspace = r.workspace.value_or(WorkspaceUsage{});
        const auto egress = r.egress.value_or(EgressSummary{});
        const auto blob = [](const std::string& text) { return pqxx::binarystring(text); };
        pqxx::nontransaction work(connection);  // record_execution() is one statement: its own transaction
        work.exec_prepared(
            "record", blob(r.execution_id), blob(r.node), blob(r.twin_id), blob(r.job_id), blob(r.ns), blob(r.tool),
            blob(encode_list(r.args)), signed_of(r.arg_count), r.args_truncated, r.allowed, blob(r.reason),
            blob(r.rule), blob(encode_list(r.notes)), r.ran, r.exit_code, r.signal, r.timed_out, r.cancelled,
            std::string(to_string(r.limit_hit)), std::string(to_string(r.isolation)), blob(r.message),
            blob(encode_list(r.out.lines)), r.out.truncated, signed_of(r.out.total_bytes),
            blob(encode_list(r.err.lines)), r.err.truncated, signed_of(r.err.total_bytes), r.output_dropped,
            std::int64_t{r.usage.cpu_user.count()}, std::int64_t{r.usage.cpu_system.count()},
            signed_of(r.usage.max_rss_bytes), signed_of(r.usage.peak_memory_bytes), std::int64_t{r.elapsed.count()},
            r.workspace.has_value(), signed_of(workspace.bytes), signed_of(workspace.entries),
            signed_of(workspace.quota_bytes), micros(r.started), micros(r.finished), signed_of(output_size(r)),
            std::string(to_string(how_it_ended(r.ran, r.exit_code, r.timed_out))), r.egress.has_value(),
            std::int64_t{egress.allowed}, std::int64_t{egress.refused}, signed_of(egress.bytes_up),
            signed_of(egress.bytes_down), signed_of(settings_.max_records),
            signed_of(settings_.output_budget_bytes), age_cutoff_us(settings_));
        return {};
      });
  note_write(written);
  return written;
}

Result<void> PostgresStore::apply_age_retention() {
  const auto cutoff = age_cutoff_us(settings_);
  if (cutoff == 0) return {};
  return run<void>("remove records past their age", [&](pqxx::connection& connection) -> Result<void> {
        // One statement: the rows go and the output they held leaves execution_state's count.
        // Months of records may go at once: no statement timeout.
        pqxx::work work(connection);
        work.exec("SET LOCAL statement_timeout = 0");
        work.exec_params(
            "WITH gone AS (DELETE FROM executions WHERE finished_us < $1 RETURNING output_bytes) "
            "UPDATE execution_state SET output_bytes = greatest(output_bytes - "
            "(SELECT coalesce(sum(output_bytes), 0) FROM gone), 0)",
            cutoff);
        work.commit();
        return {};
      });
}

Result<HistoryPage> PostgresStore::query(const HistoryQuery& query) const {
  return run<HistoryPage>("query", [&](pqxx::connection& connection) -> Result<HistoryPage> {
        PageFiller filler(query);
        const auto [outcome, ended] = outcome_terms(query.outcome);
        pqxx::nontransaction work(connection);
        const auto rows = work.exec_prepared("page", signed_of(query.before_sequence),
                                             pqxx::binarystring(query.twin_id), pqxx::binarystring(query.job_id),
                                             outcome, ended, signed_of(filler.rows_wanted()));
        for (const auto& row : rows) {
          if (!filler.add(read_record(row))) break;
        }
        return filler.take();
      });
}

Result<std::optional<ExecutionRecord>> PostgresStore::find(const std::string& execution_id) const {
  return run<std::optional<ExecutionRecord>>("find", [&](pqxx::connection& connection) -> Result<std::optional<ExecutionRecord>> {
        pqxx::nontransaction work(connection);
        const auto rows = work.exec_prepared("find", pqxx::binarystring(execution_id));
        if (rows.empty()) return std::optional<ExecutionRecord>();
        return std::optional<ExecutionRecord>(read_record(rows[0]));
      });
}

StoreHealth PostgresStore::health() const {
  std::lock_guard lock(mutex_);
  return {.healthy = last_error_.empty(),
          .detail = last_error_.empty() ? shown_ : last_error_,
          .failed_writes = failed_writes_};
}

}  // namespace pagi_exec::detail
