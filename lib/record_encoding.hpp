// SPDX-License-Identifier: Apache-2.0
// How the durable stores (SQLite, PostgreSQL) keep a record's lists, times and enums in columns.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

}  // namespace pagi_exec::detail
