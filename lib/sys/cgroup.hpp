// SPDX-License-Identifier: Apache-2.0
// Per-execution control groups: memory and process limits, peak memory, which limit was hit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

struct CgroupLimits {
  std::uint64_t memory_bytes = 0;  ///< 0: no memory limit
  std::uint64_t max_pids = 0;      ///< 0: no pids limit
  bool operator==(const CgroupLimits&) const = default;
};

/// What the kernel counted for one execution.
struct CgroupUsage {
  std::uint64_t peak_memory_bytes = 0;
  bool oom_killed = false;      ///< the memory limit made the kernel kill a process
  bool pids_limit_hit = false;  ///< a fork failed because of the pids limit
};

/// One group's folders and the control files every execution reads or joins, opened once: a
/// pooled group serves many executions, and each open of a cgroup file allocates in the kernel
/// (it was 17 opens per execution). Defined in cgroup.cpp.
struct CgroupFiles;

/// A cgroup (v1: one per controller) held by one execution.
struct CgroupLease {
  std::vector<std::filesystem::path> dirs;  ///< v1: memory dir, pids dir; v2: one dir
  std::vector<int> procs;                   ///< cgroup.procs of each dir (owned by `files`), for the child to join
  std::uint64_t oom_kills_before = 0;       ///< counters cannot be reset: remember the baseline
  std::uint64_t pids_max_before = 0;
  std::shared_ptr<CgroupFiles> files;
};

/// A pool of per-execution cgroups under a parent group of this process. Reusing groups
/// avoids a mkdir and an rmdir (~0.4 ms) per execution, and their files' opens. Thread-safe.
class CgroupPool;
/// cgroup v2 with a delegated subtree offering memory and pids; Errc::sandbox_setup otherwise.
[[nodiscard]] Result<std::shared_ptr<CgroupPool>> make_v2_pool();

class CgroupPool {
 public:
  enum class Kind : std::uint8_t { v1, v2 };

  /// Finds writable memory and pids controllers (cgroup v2 with a delegated subtree, else v1)
  /// and creates this process's parent group. Errc::sandbox_setup when there are none.
  [[nodiscard]] static Result<std::shared_ptr<CgroupPool>> make();
  ~CgroupPool();
  CgroupPool(const CgroupPool&) = delete;
  CgroupPool& operator=(const CgroupPool&) = delete;

  /// A group with these limits, empty and with fresh counters.
  [[nodiscard]] Result<CgroupLease> acquire(const CgroupLimits& limits);
  /// What the execution used; final once its processes are dead (they may not be reaped yet).
  [[nodiscard]] CgroupUsage read_usage(const CgroupLease& lease) const;
  /// SIGKILLs every process in the lease's groups, round after round (a fork between a read
  /// and the kills is caught next round), until they are empty or about a second has passed.
  /// For a tree whose supervisor is gone. Returns true once empty.
  static bool kill_members(const CgroupLease& lease);
  /// Returns the group to the pool once it is empty (or removes it). May wait for the last
  /// processes to be reaped: call it off the response path.
  void recycle(CgroupLease lease);

 private:
  friend Result<std::shared_ptr<CgroupPool>> make_v2_pool();
  CgroupPool(Kind kind, std::vector<std::filesystem::path> parents) : kind_(kind), parents_(std::move(parents)) {}
  [[nodiscard]] Result<std::shared_ptr<CgroupFiles>> create_group();
  [[nodiscard]] std::shared_ptr<CgroupFiles> take_idle();
  void remove_group(const std::vector<std::filesystem::path>& dirs);

  Kind kind_;
  std::vector<std::filesystem::path> parents_;  // v1: memory parent, pids parent; v2: one
  std::mutex mutex_;
  std::vector<std::shared_ptr<CgroupFiles>> idle_;
  std::uint64_t next_id_ = 0;
};

}  // namespace pagi_exec::sys
