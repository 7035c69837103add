// SPDX-License-Identifier: Apache-2.0
// rlimits: per-process caps that hold in every isolation mode, cgroups or not.
#include "sys/rlimits.hpp"

#include <sys/resource.h>

#include <cerrno>

namespace pagi_exec::sys {

RlimitSet make_rlimits(std::uint64_t cpu_seconds, std::uint64_t file_size_bytes, std::uint64_t open_files,
                       std::uint64_t address_space_bytes) {
  RlimitSet set;
  std::size_t n = 0;
  const auto add = [&](int resource, std::uint64_t value) {
    if (value != 0 || resource == RLIMIT_CORE) set.entries[n++] = {resource, value};
  };
  add(RLIMIT_CORE, 0);  // a core dump would write the process's memory into the workspace
  add(RLIMIT_CPU, cpu_seconds);
  add(RLIMIT_FSIZE, file_size_bytes);
  add(RLIMIT_NOFILE, open_files);
  add(RLIMIT_AS, address_space_bytes);
  return set;
}

int apply_rlimits_in_child(const RlimitSet& limits) noexcept {
  for (const auto& entry : limits.entries) {
    if (entry.resource < 0) continue;
    // CPU: SIGXCPU at the limit, SIGKILL a second later for a process that ignores it.
    const rlim_t hard = entry.resource == RLIMIT_CPU ? entry.value + 1 : entry.value;
    const rlimit value{entry.value, hard};
    if (::setrlimit(static_cast<__rlimit_resource>(entry.resource), &value) != 0) return errno;
  }
  return 0;
}

}  // namespace pagi_exec::sys
