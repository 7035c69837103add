// SPDX-License-Identifier: Apache-2.0
// The spawn helper ("zygote"): a small single-threaded process, forked at the top of main(),
// that clones each run's supervisor or native init on the server's behalf, so an execution
// never forks the big multithreaded server. See start_spawn_helper() in pagi_exec/spawner.hpp.
//
// Protocol, on a SOCK_SEQPACKET socketpair made before any thread exists:
//  1. Per run, the server makes a socketpair of its own and sends ONE message on the shared
//     socket: the child's arguments (tree_wire.hpp) with the run's descriptors and the helper's
//     end of the run's socket (SCM_RIGHTS). A SEQPACKET sendmsg is one record, queued whole or
//     not at all, so the server's threads share the socket without a lock.
//  2. The helper clones the tree root with the flags the server would use, runs the same
//     supervise_in_child / run_init_in_child, closes its copies of the run's descriptors and
//     answers on the run's socket: HelperStarted (the pid or the clone's errno) and a pidfd.
//     A cwd or bwrap run goes to a pooled supervisor instead (supervisor_pool.hpp), whose pid
//     and pidfd the answer carries.
//  3. When it reaps the root (SIGCHLD via signalfd) it writes the wait status on the run's
//     socket and closes it (TreeRoot::wait reads it); a pooled supervisor's run gets status 0
//     when the supervisor says the run is over.
// The helper exits when the server's end hangs up (or with the server: PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "pagi_exec/error.hpp"
#include "sys/tree_root.hpp"

namespace pagi_exec::sys {

struct ChildArgs;
struct NativeArgs;

/// The helper's first answer on a run's socket.
struct HelperStarted {
  std::int32_t pid = 0;          ///< the tree root, in our PID namespace; 0: not started
  std::int32_t clone_errno = 0;  ///< why not
};

/// Asks the helper to start a run's tree root. `args` (and `native`, `maps_fd`, `native_shared`,
/// the sealed memfd of seal_native_shared) hold descriptors of this process; it keeps them (the
/// helper gets copies). nullopt: no helper to use (none started, it is gone, this process is a
/// fork of the one that started it or changed its credentials since, or the plan is larger than
/// max_run_message_bytes): the caller clones the root itself. An error: the clone failed in the
/// helper (errno set), or the helper went away during the hand-over, when the run must not be
/// retried (a child may already hold its descriptors).
[[nodiscard]] Result<std::optional<TreeRoot>> start_via_helper(const ChildArgs& args, const NativeArgs* native,
                                                               int maps_fd, int native_shared);

/// Notes a tree root cloned by this process itself (for spawn_counts).
void count_direct_start() noexcept;

/// How many tree roots were started each way since the process started, so tests can see which
/// path runs took.
struct SpawnCounts {
  std::uint64_t via_helper = 0;
  std::uint64_t direct = 0;
};
[[nodiscard]] SpawnCounts spawn_counts() noexcept;

/// The helper's pid, or -1 when none was started (tests kill it to see the fallback).
[[nodiscard]] pid_t spawn_helper_pid() noexcept;
/// Whether the helper runs as the pagi-spawner program (start_spawn_helper was given it and the
/// exec worked) rather than as the host's own fork.
[[nodiscard]] bool spawn_helper_is_program() noexcept;

}  // namespace pagi_exec::sys
