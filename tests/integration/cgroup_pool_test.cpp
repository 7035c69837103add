// SPDX-License-Identifier: Apache-2.0
// The cgroup pool: a reused group takes new limits, starts each execution with fresh counters
// and peak, and a pooled group removed under the pool is replaced, not used.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sys/cgroup.hpp"
#include "test_support.hpp"

namespace {

using pagi_exec::sys::CgroupLease;
using pagi_exec::sys::CgroupPool;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `body` in a child that first joins every group of `lease`; returns its exit status.
template <typename Body>
int run_in(const CgroupLease& lease, Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const int procs : lease.procs) {
      if (::write(procs, "0", 1) != 1) ::_exit(100);  // "0": the writing process itself
    }
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Touches `bytes` of fresh memory, so the group's peak counts them.
int touch_memory(std::size_t bytes) {
  std::vector<char> block(bytes);
  std::memset(block.data(), 1, block.size());
  return block[bytes / 2] == 1 ? 0 : 1;
}

bool v1(const CgroupLease& lease) { return lease.dirs.size() == 2; }

}  // namespace

TEST_SUITE("cgroup_pool") {
  TEST_CASE("a reused group takes the next execution's limits, fresh counters and a fresh peak" *
            test_support::skip_if(::geteuid() != 0, "needs root to make cgroups")) {
    auto pool = CgroupPool::make();
    REQUIRE_MESSAGE(pool, (pool ? "" : pool.error().message()));

    auto first = (*pool)->acquire({.memory_bytes = 256ULL << 20, .max_pids = 1});
    REQUIRE(first);
    const auto dirs = first->dirs;
    // One process allowed: the child's fork fails, and the pids limit is reported.
    CHECK(run_in(*first, [] {
            const pid_t grandchild = ::fork();
            if (grandchild == 0) ::_exit(0);
            return grandchild < 0 && errno == EAGAIN ? 0 : 1;
          }) == 0);
    CHECK(run_in(*first, [] { return touch_memory(32ULL << 20); }) == 0);
    const auto used = (*pool)->read_usage(*first);
    CHECK(used.pids_limit_hit);
    CHECK(used.peak_memory_bytes >= (32ULL << 20));
    (*pool)->recycle(std::move(*first));

    auto second = (*pool)->acquire({.memory_bytes = 128ULL << 20, .max_pids = 64});
    REQUIRE(second);
    if (!v1(*second)) {
      test_support::skip_part("cgroup v2: groups are not reused (memory.peak cannot be reset), so reuse is not checked");
      (*pool)->recycle(std::move(*second));
      return;
    }
    CHECK(second->dirs == dirs);  // the same group, reused
    CHECK(read_text(second->dirs.front() / "memory.limit_in_bytes") == std::to_string(128ULL << 20) + "\n");
    CHECK(read_text(second->dirs.back() / "pids.max") == "64\n");
    CHECK(run_in(*second, [] { return 0; }) == 0);
    const auto fresh = (*pool)->read_usage(*second);
    CHECK_FALSE(fresh.pids_limit_hit);   // the earlier run's hit stays with it
    CHECK(fresh.peak_memory_bytes < (32ULL << 20));
    (*pool)->recycle(std::move(*second));

    // The same limits again: nothing to write, and they still hold.
    auto third = (*pool)->acquire({.memory_bytes = 128ULL << 20, .max_pids = 64});
    REQUIRE(third);
    CHECK(read_text(third->dirs.back() / "pids.max") == "64\n");
    (*pool)->recycle(std::move(*third));
  }

  TEST_CASE("a pooled group removed by someone else is replaced by a new one" *
            test_support::skip_if(::geteuid() != 0, "needs root to make cgroups")) {
    auto pool = CgroupPool::make();
    REQUIRE(pool);
    auto lease = (*pool)->acquire({.memory_bytes = 64ULL << 20, .max_pids = 8});
    REQUIRE(lease);
    const auto dirs = lease->dirs;
    (*pool)->recycle(std::move(*lease));
    for (const auto& dir : dirs) ::rmdir(dir.c_str());  // empty: another server's sweep could do this
    auto next = (*pool)->acquire({.memory_bytes = 64ULL << 20, .max_pids = 8});
    REQUIRE_MESSAGE(next, (next ? "" : next.error().message()));
    CHECK(next->dirs != dirs);
    for (const auto& dir : next->dirs) CHECK(std::filesystem::is_directory(dir));
    CHECK(run_in(*next, [] { return 0; }) == 0);
    (*pool)->recycle(std::move(*next));
  }

  TEST_CASE("a pool whose parent group was removed under it makes the parent again" *
            test_support::skip_if(::geteuid() != 0, "needs root to make cgroups")) {
    auto pool = CgroupPool::make();
    REQUIRE(pool);
    auto lease = (*pool)->acquire({.memory_bytes = 64ULL << 20, .max_pids = 8});
    REQUIRE(lease);
    const auto dirs = lease->dirs;
    (*pool)->recycle(std::move(*lease));
    for (const auto& dir : dirs) {
      ::rmdir(dir.c_str());
      REQUIRE(::rmdir(dir.parent_path().c_str()) == 0);  // the pool's own parent, now empty
    }
    auto next = (*pool)->acquire({.memory_bytes = 64ULL << 20, .max_pids = 8});
    REQUIRE_MESSAGE(next, (next ? "" : next.error().message()));
    for (const auto& dir : next->dirs) CHECK(std::filesystem::is_directory(dir));
    CHECK(run_in(*next, [] { return 0; }) == 0);
    (*pool)->recycle(std::move(*next));
  }
}
