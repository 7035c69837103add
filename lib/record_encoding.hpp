// SPDX-License-Identifier: Apache-2.0
// How the durable stores (SQLite, PostgreSQL) keep a record's lists, times and enums in columns.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/execution_record.hpp"
#include "pagi_exec/outcome.hpp"

namespace pagi_exec::detail {

/// Lists as one byte string: each item as a 4-byte little-endian length and its bytes.
inline std::string encode_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    const auto n = static_cast<std::uint32_t>(item.size());
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((n >> shift) & 0xFFU));
    out += item;
  }
  return out;
}

/// encode_list's items back; a cut-off last item comes back short rather than failing.
inline std::vector<std::string> decode_list(std::string_view blob) {
  std::vector<std::string> items;
  while (blob.size() >= 4) {
    std::uint32_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(blob[i])) << (8 * i);
    blob.remove_prefix(4);
    n = static_cast<std::uint32_t>(std::min<std::size_t>(n, blob.size()));
    items.emplace_back(blob.substr(0, n));
    blob.remove_prefix(n);
  }
  return items;
}

/// Times as microseconds since the epoch.
inline std::int64_t micros(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
}

inline std::chrono::system_clock::time_point from_micros(std::int64_t us) {
  using Clock = std::chrono::system_clock;
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(us)));
}

/// A LimitHit by its to_string() name; none for anything else.
inline LimitHit limit_hit_named(std::string_view name) {
  for (auto hit : {LimitHit::timeout, LimitHit::memory, LimitHit::pids, LimitHit::cpu, LimitHit::file_size,
                   LimitHit::workspace_quota}) {
    if (name == to_string(hit)) return hit;
  }
  return LimitHit::none;
}

/// A record from one row in the durable stores' shared column order (their record_columns):
/// `row` reads the next column as an integer (`integer()`), a flag (`flag()`), bytes kept as they
/// are (`bytes()`) or text (`text()`).
template <class Row>
ExecutionRecord record_from_row(Row& row) {
  const auto i64 = [&] { return row.integer(); };
  const auto u64 = [&] { return static_cast<std::uint64_t>(row.integer()); };
  const auto flag = [&] { return row.flag(); };
  const auto bytes = [&] { return row.bytes(); };
  ExecutionRecord r;
  r.sequence = u64();
  r.execution_id = bytes();
  r.node = bytes();
  r.twin_id = bytes();
  r.job_id = bytes();
  r.ns = bytes();
  r.tool = bytes();
  r.args = decode_list(bytes());
  r.arg_count = u64();
  r.args_truncated = flag();
  r.allowed = flag();
  r.reason = bytes();
  r.rule = bytes();
  r.notes = decode_list(bytes());
  r.ran = flag();
  r.exit_code = static_cast<int>(i64());
  r.signal = static_cast<int>(i64());
  r.timed_out = flag();
  r.cancelled = flag();
  r.limit_hit = limit_hit_named(row.text());
  r.isolation = isolation_from_string(row.text()).value_or(Isolation::cwd);
  r.message = bytes();
  r.out.lines = decode_list(bytes());
  r.out.truncated = flag();
  r.out.total_bytes = u64();
  r.err.lines = decode_list(bytes());
  r.err.truncated = flag();
  r.err.total_bytes = u64();
  r.output_dropped = flag();
  r.usage.cpu_user = std::chrono::microseconds(i64());
  r.usage.cpu_system = std::chrono::microseconds(i64());
  r.usage.max_rss_bytes = u64();
  r.usage.peak_memory_bytes = u64();
  r.elapsed = std::chrono::microseconds(i64());
  const bool has_workspace = flag();
  WorkspaceUsage workspace{.bytes = u64(), .entries = u64(), .quota_bytes = u64()};
  if (has_workspace) r.workspace = workspace;
  r.started = from_micros(i64());
  r.finished = from_micros(i64());
  const bool has_egress = flag();
  EgressSummary egress{.allowed = static_cast<std::uint32_t>(u64()), .refused = static_cast<std::uint32_t>(u64()),
                       .bytes_up = u64(), .bytes_down = u64()};
  if (has_egress) r.egress = egress;
  return r;
}

}  // namespace pagi_exec::detail
