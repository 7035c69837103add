// SPDX-License-Identifier: Apache-2.0
// TreeRoot: the parent's handle on a run's supervisor (or native init), whoever cloned it.
#pragma once

#include <sys/types.h>

#include <optional>

#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// The first process of a run's tree, as the server sees it. Either the server's own child
/// (cloned directly) or a child of the spawn helper (spawn_helper.hpp), which the server can
/// signal only through a pidfd (a pid it did not reap could be reused) and whose wait status
/// the helper sends on the run's socket. One per run, used by one thread at a time.
class TreeRoot {
 public:
  /// A child of this process.
  [[nodiscard]] static TreeRoot direct(pid_t pid) noexcept;
  /// A child of the spawn helper: its pidfd, and the run's socket on which the helper writes its
  /// wait status once it reaped it (then hangs up).
  [[nodiscard]] static TreeRoot via_helper(pid_t pid, unique_fd pidfd, unique_fd status) noexcept;

  TreeRoot(TreeRoot&&) noexcept = default;
  TreeRoot& operator=(TreeRoot&&) noexcept = default;
  TreeRoot(const TreeRoot&) = delete;
  TreeRoot& operator=(const TreeRoot&) = delete;
  ~TreeRoot() = default;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool is_via_helper() const noexcept { return pidfd_.valid(); }
  /// SIGKILLs the process unless it was reaped already (never another process with its pid).
  void kill() const noexcept;
  /// Blocks until the process is gone (reaped, here or by the helper); its wait status, or
  /// nullopt when nobody could tell it (the helper died; the process was then reaped by init).
  /// Once only.
  std::optional<int> wait() noexcept;

 private:
  TreeRoot(pid_t pid, unique_fd pidfd, unique_fd status) noexcept
      : pid_(pid), pidfd_(std::move(pidfd)), status_(std::move(status)) {}
  pid_t pid_ = -1;
  unique_fd pidfd_;   // via the helper only
  unique_fd status_;  // via the helper only
  bool reaped_ = false;
};

}  // namespace pagi_exec::sys
