// SPDX-License-Identifier: Apache-2.0
// Small async-signal-safe helpers for code that runs between clone and exec (signal-safety(7)):
// raw system calls only, no allocation, no locks, no stdio.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace pagi_exec::sys {

/// CLOCK_MONOTONIC in microseconds.
[[nodiscard]] std::int64_t monotonic_us() noexcept;

/// clone(2) with `flags` and no new stack (fork semantics), without glibc's atfork handlers,
/// which are not async-signal-safe (a handler could take a lock another server thread held).
[[nodiscard]] pid_t raw_clone(unsigned long flags) noexcept;

/// Closes every descriptor >= 3 except the (at most 12) listed ones; -1 entries are ignored.
[[nodiscard]] bool close_fds_except(const int* keep, std::size_t count) noexcept;

/// Default dispositions for every signal and an empty mask: both survive execve (signal(7)),
/// and the server's (ignored SIGPIPE, signals blocked for its signal thread) must not leak.
void reset_signals() noexcept;

/// Why wait_readable() returned.
enum class Wake : std::uint8_t { readable, deadline, control, error };

/// Waits until `fd` is readable, `control_fd` is readable or hung up (the parent's word to stop,
/// or its death), or CLOCK_MONOTONIC reaches `deadline_us`. Retries on EINTR.
[[nodiscard]] Wake wait_readable(int fd, int control_fd, std::int64_t deadline_us) noexcept;

/// Writes all of `data` (retrying on EINTR); gives up silently on error.
void write_all(int fd, const void* data, std::size_t size) noexcept;

/// Appends the decimal digits of `value` at buf[at]; returns the new end (no snprintf here).
[[nodiscard]] std::size_t append_number(char* buf, std::size_t at, std::uint64_t value) noexcept;

}  // namespace pagi_exec::sys
