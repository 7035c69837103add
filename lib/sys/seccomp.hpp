// SPDX-License-Identifier: Apache-2.0
// Seccomp-bpf deny-list of the native and bwrap sandboxes: compiled in the parent, installed in the
// child (native) or handed to bubblewrap on a descriptor (bwrap --seccomp).
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

/// A compiled seccomp BPF program. Built once in the parent (libseccomp allocates), installed in
/// each child after fork with one raw syscall (no allocation: async-signal-safe). A regular value:
/// copyable, movable, comparable; immutable once made, so it may be shared between threads.
/// The policy (which calls are refused, and why) is the table in seccomp.cpp and docs/seccomp.md.
class SeccompProgram {
 public:
  /// The default deny-list: default action ALLOW; listed calls fail with EPERM (clone3 and
  /// syscall numbers newer than the table with ENOSYS); any non-native ABI (i386 `int $0x80`,
  /// x32) kills the process. Errc::sandbox_setup (with libseccomp's errno) if libseccomp fails.
  [[nodiscard]] static Result<SeccompProgram> make_default();
  /// A program from instructions another process compiled (the spawn helper receives them in
  /// tree_wire's sealed memfd). Errc::internal when empty or longer than BPF_MAXINSNS; the
  /// instructions themselves are the compiler's.
  [[nodiscard]] static Result<SeccompProgram> from_instructions(std::vector<sock_filter> code);

  /// The program for seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog). It points into this object:
  /// valid as long as this object lives. Built on demand, so copies and moves stay correct.
  [[nodiscard]] sock_fprog fprog() const noexcept;
  /// Number of BPF instructions (at most BPF_MAXINSNS).
  [[nodiscard]] std::size_t size() const noexcept { return code_.size(); }

  [[nodiscard]] bool operator==(const SeccompProgram& other) const noexcept;

 private:
  explicit SeccompProgram(std::vector<sock_filter> code) noexcept : code_(std::move(code)) {}
  std::vector<sock_filter> code_;
};

/// In the child, after prctl(PR_SET_NO_NEW_PRIVS, 1) and as the last step before execve (the
/// filter refuses mount, unshare, ... that earlier setup steps need): installs `program` for the
/// calling thread. Returns 0, or the errno of seccomp(2) (EINVAL for an empty, moved-from program).
/// Async-signal-safe: one syscall, no allocation.
[[nodiscard]] int load_seccomp_in_child(const SeccompProgram& program) noexcept;

}  // namespace pagi_exec::sys
