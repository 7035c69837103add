// SPDX-License-Identifier: Apache-2.0
// PostgresStore: the execution store in a PostgreSQL database that several servers share.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pagi_exec/execution_store.hpp"

namespace pagi_exec::detail {

/// Each record is one statement (record_execution(), see postgres_migrations.hpp) committed before
/// record() returns, so it survives this process being killed; sessions use
/// synchronous_commit=off and a 5 s statement_timeout unless the URI names them (see
/// postgres_store.cpp), so a power loss of the database host may lose the last fraction of a
/// second of records. The database gives the sequences,
/// in commit order, so every server sharing it lists one order. Connections come from a pool of
/// settings.pool_size, opened on first use; one that breaks is dropped and opened again on the
/// next call. When the database is away, record() fails within the connect timeout (2 s unless
/// the URI sets connect_timeout; 5 s for a connection whose peer vanished) and health() says why.
class PostgresStore final : public ExecutionStore {
 public:
  /// Connects, and migrates the schema under an advisory lock (replicas may start together);
  /// Errc::io with the URI (password masked) and what PostgreSQL said when it cannot.
  [[nodiscard]] static Result<std::shared_ptr<PostgresStore>> open(const StoreSettings& settings);
  ~PostgresStore() override;

  [[nodiscard]] Result<void> record(ExecutionRecord entry) override;
  [[nodiscard]] Result<HistoryPage> query(const HistoryQuery& query) const override;
  [[nodiscard]] Result<std::optional<ExecutionRecord>> find(const std::string& execution_id) const override;
  [[nodiscard]] StoreHealth health() const override;

  /// Records older than max_age_days go now (also done at open and every 256 records).
  [[nodiscard]] Result<void> apply_age_retention();

 private:
  struct Connection;  // a pqxx::connection, kept out of this header
  class Lease;
  explicit PostgresStore(StoreSettings settings);
  [[nodiscard]] Result<void> migrate();
  [[nodiscard]] Error failure(const std::string& what, const std::exception& cause) const;
  // `work(connection)` on a leased connection; libpqxx's exceptions become Errc::io saying `what`.
  template <class T, class Work>
  [[nodiscard]] Result<T> run(const std::string& what, Work&& work) const;
  void note_write(const Result<void>& written);

  StoreSettings settings_;
  std::string conninfo_;  // settings_.uri with a connect_timeout
  std::string shown_;     // "postgresql <masked uri>"
  mutable std::mutex mutex_;
  mutable std::condition_variable returned_;
  mutable std::vector<std::unique_ptr<Connection>> idle_;  // open, ready
  mutable std::size_t leased_ = 0;                               // out of the pool now
  std::uint64_t failed_writes_ = 0;
  std::string last_error_;  // of the last write, empty once one succeeds
};

}  // namespace pagi_exec::detail
