// SPDX-License-Identifier: Apache-2.0
// The spawn helper's own loop (protocol: spawn_helper.hpp). It runs in the process forked by
// start_spawn_helper, or in the small static program that process becomes (apps/pagi-spawner),
// whose few memory mappings make each clone of a run's root cheaper still.
#pragma once

#include <signal.h>

#include <cstdint>

namespace pagi_exec::sys {

/// The first record the helper sends: it is set up, and how it runs.
enum class HelperKind : std::uint8_t {
  in_process = 1,  ///< a fork of the host, running this loop
  program = 2,     ///< the host's fork exec'd the pagi-spawner program, which runs it
};

/// Sends `kind` on `socket`, then serves runs until the host hangs up (then lets its runs end,
/// kills what is left and exits). `server_mask` is the signal mask the host had, which each
/// run's root gets back. Expects what the fork set up: bound to the host's life
/// (PR_SET_PDEATHSIG), stdio on /dev/null, no other descriptor, SIGCHLD blocked at its default.
[[noreturn]] void run_spawn_helper(int socket, const sigset_t& server_mask, HelperKind kind);

}  // namespace pagi_exec::sys
