// SPDX-License-Identifier: Apache-2.0
// Signalling and reaping a run's first process, be it ours or the spawn helper's.
#include "sys/tree_root.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdint>

namespace pagi_exec::sys {

TreeRoot TreeRoot::direct(pid_t pid) noexcept { return TreeRoot(pid, unique_fd(), unique_fd()); }

TreeRoot TreeRoot::via_helper(pid_t pid, unique_fd pidfd, unique_fd status) noexcept {
  return TreeRoot(pid, std::move(pidfd), std::move(status));
}

void TreeRoot::kill() const noexcept {
  if (reaped_) return;
  if (pidfd_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);  // ESRCH once it is gone
  } else {
    ::kill(pid_, SIGKILL);  // our unreaped child: its pid cannot have been reused
  }
}

std::optional<int> TreeRoot::wait() noexcept {
  if (reaped_) return std::nullopt;
  reaped_ = true;
  if (!pidfd_) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) return std::nullopt;
    }
    return status;
  }
  std::int32_t status = 0;
  for (;;) {
    const auto n = ::recv(status_.get(), &status, sizeof status, 0);
    if (n == static_cast<ssize_t>(sizeof status)) return status;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  // The helper hung up without a status: it died, and init reaps the orphan. A pidfd polls
  // readable once its process has exited (pidfd_open(2)): wait for that, so "gone" still holds.
  pollfd exited{pidfd_.get(), POLLIN, 0};
  while (::poll(&exited, 1, -1) < 0 && errno == EINTR) {}
  return std::nullopt;
}

}  // namespace pagi_exec::sys
