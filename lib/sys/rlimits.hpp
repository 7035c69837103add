// SPDX-License-Identifier: Apache-2.0
// Resource limits applied to the command in every isolation mode (see getrlimit(2)).
#pragma once

#include <array>
#include <cstdint>

namespace pagi_exec::sys {

/// The rlimits of one execution, as (resource, value) pairs ready for the child. 0 = unset.
struct RlimitSet {
  struct Entry {
    int resource = -1;      ///< RLIMIT_*; -1 marks an unused slot
    std::uint64_t value = 0;
  };
  std::array<Entry, 8> entries{};
};

/// CPU seconds, file size, open files and (optionally) address space; core dumps always off.
/// Never RLIMIT_NPROC: it counts every process of the uid, in every sandbox; the pids cgroup
/// limits a run's tree instead.
[[nodiscard]] RlimitSet make_rlimits(std::uint64_t cpu_seconds, std::uint64_t file_size_bytes,
                                     std::uint64_t open_files, std::uint64_t address_space_bytes);

/// In the child: applies every entry (soft = hard, but for CPU: hard = soft + 1 s). Returns 0 or
/// errno. Async-signal-safe.
[[nodiscard]] int apply_rlimits_in_child(const RlimitSet& limits) noexcept;

}  // namespace pagi_exec::sys
