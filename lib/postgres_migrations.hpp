// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL execution store's schema, one migration per version, applied in order at open.
#pragma once

#include <array>
#include <string_view>

namespace pagi_exec::detail {

// postgres_migrations[i] takes a database from schema_version i to i + 1. PostgresStore::open
// runs them in one transaction holding an advisory lock, so replicas starting together apply each
// once. Never edit a migration that has shipped: add the next one.
inline constexpr std::array<std::string_view, 2> postgres_migrations = {
    // 1: the executions table, its columns in the order record_execution() receives them, and the
    // one-row execution_state.
    //
    // Strings are bytea (a twin may send any bytes, NUL and invalid UTF-8 included); lists (args,
    // notes, output lines) are length-prefixed bytea as in the SQLite store; enums are their wire
    // names; `ended` is how_it_ended(), for the outcome filter.
    //
    // Sequences come from execution_state.last_sequence, not a bigserial: a writer takes the
    // state row's lock before its sequence and holds it to its commit, so sequences are given in
    // commit order (a reader never sees 7 before 6 commits, so paging skips nothing) and without
    // the gaps a rolled-back nextval() leaves (count retention deletes by sequence). The same row
    // holds the output all rows keep and where output trimming resumes, shared by all replicas.
    R"sql(
CREATE TABLE executions (
  sequence bigint PRIMARY KEY,
  execution_id bytea NOT NULL,
  node bytea NOT NULL,
  twin_id bytea NOT NULL,
  job_id bytea NOT NULL,
  ns bytea NOT NULL,
  tool bytea NOT NULL,
  args bytea NOT NULL,
  arg_count bigint NOT NULL,
  args_truncated boolean NOT NULL,
  allowed boolean NOT NULL,
  reason bytea NOT NULL,
  rule bytea NOT NULL,
  notes bytea NOT NULL,
  ran boolean NOT NULL,
  exit_code integer NOT NULL,
  signal integer NOT NULL,
  timed_out boolean NOT NULL,
  cancelled boolean NOT NULL,
  limit_hit text NOT NULL,
  isolation text NOT NULL,
  message bytea NOT NULL,
  out_lines bytea NOT NULL,
  out_truncated boolean NOT NULL,
  out_total_bytes bigint NOT NULL,
  err_lines bytea NOT NULL,
  err_truncated boolean NOT NULL,
  err_total_bytes bigint NOT NULL,
  output_dropped boolean NOT NULL,
  cpu_user_us bigint NOT NULL,
  cpu_system_us bigint NOT NULL,
  max_rss_bytes bigint NOT NULL,
  peak_memory_bytes bigint NOT NULL,
  elapsed_us bigint NOT NULL,
  has_workspace boolean NOT NULL,
  workspace_bytes bigint NOT NULL,
  workspace_entries bigint NOT NULL,
  workspace_quota_bytes bigint NOT NULL,
  started_us bigint NOT NULL,
  finished_us bigint NOT NULL,
  output_bytes bigint NOT NULL,
  ended text NOT NULL
);
CREATE INDEX executions_by_id ON executions (execution_id);
CREATE INDEX executions_by_twin ON executions (twin_id, sequence);
CREATE INDEX executions_by_job ON executions (job_id, sequence);
CREATE INDEX executions_by_outcome ON executions (allowed, ended, sequence);
CREATE INDEX executions_by_finished ON executions (finished_us);

CREATE TABLE execution_state (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_sequence bigint NOT NULL,
  output_bytes bigint NOT NULL,
  trim_from bigint NOT NULL
);
INSERT INTO execution_state VALUES (true, 0, 0, 1);

-- One record written in one statement (one round trip): the row with the next sequence, the rows
-- beyond max_records, the oldest outputs beyond output_budget, and every 256 records the rows that
-- finished before age_cutoff_us (0: none). Returns the record's sequence.
CREATE FUNCTION record_execution(r executions, max_records bigint, output_budget bigint, age_cutoff_us bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  state execution_state%ROWTYPE;
  dropped bigint;
  victim record;
BEGIN
  UPDATE execution_state SET last_sequence = last_sequence + 1, output_bytes = output_bytes + r.output_bytes
    RETURNING * INTO state;
  r.sequence := state.last_sequence;
  INSERT INTO executions SELECT (r).*;
  IF state.last_sequence > max_records THEN
    WITH gone AS (DELETE FROM executions WHERE sequence <= state.last_sequence - max_records RETURNING output_bytes)
      SELECT coalesce(sum(output_bytes), 0) INTO dropped FROM gone;
    state.output_bytes := state.output_bytes - dropped;
  END IF;
  IF age_cutoff_us > 0 AND state.last_sequence % 256 = 0 THEN
    WITH gone AS (DELETE FROM executions WHERE finished_us < age_cutoff_us RETURNING output_bytes)
      SELECT coalesce(sum(output_bytes), 0) INTO dropped FROM gone;
    state.output_bytes := state.output_bytes - dropped;
  END IF;
  -- As the memory ring: the oldest rows lose their output until the budget holds; trim_from only
  -- moves forward, so each row is trimmed at most once.
  WHILE state.output_bytes > output_budget LOOP
    SELECT e.sequence, e.output_bytes INTO victim FROM executions e
      WHERE e.sequence >= state.trim_from AND e.output_bytes > 0 ORDER BY e.sequence LIMIT 1;
    EXIT WHEN NOT FOUND;
    UPDATE executions SET out_lines = '', err_lines = '', output_bytes = 0, output_dropped = true
      WHERE sequence = victim.sequence;
    state.output_bytes := state.output_bytes - victim.output_bytes;
    state.trim_from := victim.sequence + 1;
  END LOOP;
  UPDATE execution_state SET output_bytes = greatest(state.output_bytes, 0), trim_from = state.trim_from;
  RETURN state.last_sequence;
END
$$;
)sql",
    // 2: a run's egress totals (issue 15), appended after `ended`: record_execution() takes the
    // row in table order. has_egress is false for every run that had no proxy.
    R"sql(
ALTER TABLE executions ADD COLUMN has_egress boolean NOT NULL DEFAULT false;
ALTER TABLE executions ADD COLUMN egress_allowed bigint NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_refused bigint NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_bytes_up bigint NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN egress_bytes_down bigint NOT NULL DEFAULT 0;
)sql",
};

}  // namespace pagi_exec::detail
