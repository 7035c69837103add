// SPDX-License-Identifier: Apache-2.0
// The standard process_* metrics of this process, read from /proc/self at scrape time.
#pragma once

#include <cstdint>
#include <optional>

namespace tools_server {

class TextWriter;

/// What /proc says about this process; a figure that could not be read is unset.
struct ProcessStats {
  std::optional<double> cpu_seconds;            ///< user + system time (stat fields 14, 15)
  std::optional<std::uint64_t> resident_bytes;  ///< statm's resident pages times the page size
  std::optional<std::uint64_t> open_fds;        ///< entries of /proc/self/fd
  std::optional<std::uint64_t> max_fds;         ///< the soft RLIMIT_NOFILE (/proc/self/limits)
  std::optional<std::uint64_t> threads;         ///< stat field 20
  std::optional<double> start_time_seconds;     ///< since the epoch: btime plus stat field 22
};

/// Reads the figures now (a few small files). Thread-safe.
[[nodiscard]] ProcessStats read_process_stats();

/// process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, process_max_fds,
/// process_threads and process_start_time_seconds, each that was read.
void render_process_stats(TextWriter& writer, const ProcessStats& stats);

}  // namespace tools_server
