// SPDX-License-Identifier: Apache-2.0
// The SQLite execution store's schema, one migration per version, applied in order at open.
#pragma once

#include <array>
#include <string_view>

namespace pagi_exec::detail {

// migrations[i] takes a database from PRAGMA user_version i to i + 1, in one transaction. Never
// edit a migration that has shipped: add the next one.
inline constexpr std::array<std::string_view, 2> sqlite_migrations = {
    // 1: the executions table. Strings are BLOBs (a twin may send any bytes, NUL included); lists
    // (args, notes, output lines) are length-prefixed BLOBs; enums are their wire names. `ended`
    // is how_it_ended() of the record, for the outcome filter. AUTOINCREMENT keeps the highest
    // sequence ever used in sqlite_sequence, so sequences never go back after retention empties
    // the table.
    R"sql(
CREATE TABLE executions (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id BLOB NOT NULL,
  node BLOB NOT NULL,
  twin_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  ns BLOB NOT NULL,
  tool BLOB NOT NULL,
  args BLOB NOT NULL,
  arg_count INTEGER NOT NULL,
  args_truncated INTEGER NOT NULL,
  allowed INTEGER NOT NULL,
  reason BLOB NOT NULL,
  rule BLOB NOT NULL,
  notes BLOB NOT NULL,
  ran INTEGER NOT NULL,
  exit_code INTEGER NOT NULL,
  signal INTEGER NOT NULL,
  timed_out INTEGER NOT NULL,
  cancelled INTEGER NOT NULL,
  limit_hit TEXT NOT NULL,
  isolation TEXT NOT NULL,
  message BLOB NOT NULL,
  out_lines BLOB NOT NULL,
  out_truncated INTEGER NOT NULL,
  out_total_bytes INTEGER NOT NULL,
  err_lines BLOB NOT NULL,
  err_truncated INTEGER NOT NULL,
  err_total_bytes INTEGER NOT NULL,
  output_bytes INTEGER NOT NULL,
  output_dropped INTEGER NOT NULL,
  cpu_user_us INTEGER NOT NULL,
  cpu_system_us INTEGER NOT NULL,
  max_rss_bytes INTEGER NOT NULL,
  peak_memory_bytes INTEGER NOT NULL,
  elapsed_us INTEGER NOT NULL,
  has_workspace INTEGER NOT NULL,
  workspace_bytes INTEGER NOT NULL,
  workspace_entries INTEGER NOT NULL,
  workspace_quota_bytes INTEGER NOT NULL,
  started_us INTEGER NOT NULL,
  finished_us INTEGER NOT NULL,
  ended TEXT NOT NULL
);
CREATE INDEX executions_by_id ON executions (execution_id);
CREATE INDEX executions_by_twin ON executions (twin_id, sequence);
CREATE INDEX executions_by_job ON executions (job_id, sequence);
CREATE INDEX executions_by_outcome ON executions (allowed, ended, sequence);
CREATE INDEX executions_by_finished ON executions (finished_us);
)sql",
    // 2: a run's egress totals (issue 15): has_egress is 0 for every run that had no proxy.
    R"sql(
ALTER TABLE executions ADD COLUMN has_egress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_allowed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_bytes_up INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_bytes_down INTEGER NOT NULL DEFAULT 0;
)sql",
};

}  // namespace pagi_exec::detail
