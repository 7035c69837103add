// SPDX-License-Identifier: Apache-2.0
// Async-signal-safe helpers shared by the supervisor and the native init.
#include "sys/child.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace pagi_exec::sys {

std::int64_t monotonic_us() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

pid_t raw_clone(unsigned long flags) noexcept {
  return static_cast<pid_t>(::syscall(SYS_clone, flags, 0, 0, 0, 0));
}

bool close_fds_except(const int* keep, std::size_t count) noexcept {
  int sorted[12];
  std::size_t n = 0;
  for (std::size_t i = 0; i < count && n < 12; ++i) {
    if (keep[i] >= 3) sorted[n++] = keep[i];
  }
  for (std::size_t i = 1; i < n; ++i) {  // insertion sort: tiny and allocation-free
    for (std::size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; --j) {
      const int t = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = t;
    }
  }
  unsigned int from = 3;
  for (std::size_t i = 0; i < n; ++i) {
    const auto fd = static_cast<unsigned int>(sorted[i]);
    if (fd >= from) {
      if (fd > from && ::syscall(SYS_close_range, from, fd - 1, 0) != 0) return false;
      from = fd + 1;
    }
  }
  return ::syscall(SYS_close_range, from, ~0U, 0) == 0;
}

void reset_signals() noexcept {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

Wake wait_readable(int fd, int control_fd, std::int64_t deadline_us) noexcept {
  for (;;) {
    const std::int64_t left = deadline_us - monotonic_us();
    if (left <= 0) return Wake::deadline;
    pollfd fds[2] = {{fd, POLLIN, 0}, {control_fd, POLLIN, 0}};
    const timespec wait{left / 1'000'000, (left % 1'000'000) * 1000};
    const int ready = ::ppoll(fds, 2, &wait, nullptr);
    if (ready < 0 && errno != EINTR) return Wake::error;
    if (ready <= 0) continue;
    if (fds[1].revents != 0) return Wake::control;
    if (fds[0].revents != 0) return Wake::readable;
  }
}

void write_all(int fd, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const auto n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::size_t append_number(char* buf, std::size_t at, std::uint64_t value) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) buf[at++] = digits[--n];
  return at;
}

}  // namespace pagi_exec::sys
