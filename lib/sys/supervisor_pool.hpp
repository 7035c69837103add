// SPDX-License-Identifier: Apache-2.0
// The spawn helper's pool of supervisors for cwd and bwrap runs: processes forked once that each
// supervise one run after another, so a run costs no fork and no exit of a supervisor.
//
// Why: a supervisor forked per run was a third of the spawn helper's CPU (a tenth of the whole
// machine's) under a cwd `echo` load on a VM where page faults and mm teardown are dear: the fork
// copies the helper's page tables, both then take copy-on-write faults, its exit unmaps it all.
// A pooled one pays that once (docs/PERFORMANCE.md, table a, third session).
// It is still a process of its own per run in flight, so nothing of the supervisor's design
// changes: a subreaper that kills whatever the command left, keeping root while the command
// drops it (supervisor.hpp).
//
// A worker is handed a run on its socket (the run's descriptors re-sent with SCM_RIGHTS),
// supervises it (supervise_pooled), closes every descriptor of it and sends one byte back. The
// helper then writes wait status 0 on the run's socket, as it would for a supervisor that exited.
// The worker is given out again only once the server has hung up that socket (TreeRoot gone):
// until then the server may still SIGKILL it through its pidfd, and a kill meant for a finished
// run must never reach the next one.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "sys/spawn_helper.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

class ReceivedRun;

class SupervisorPool {
 public:
  /// Workers get `child_mask` as their signal mask (the server's, as a cloned supervisor has).
  explicit SupervisorPool(const sigset_t& child_mask) : child_mask_(child_mask) {}
  SupervisorPool(const SupervisorPool&) = delete;
  SupervisorPool& operator=(const SupervisorPool&) = delete;
  ~SupervisorPool() = default;

  /// Hands a cwd or bwrap run to an idle worker (forking one when none is idle) and returns what
  /// to answer the server: the worker's pid, and its pidfd to send (borrowed). nullopt: no worker
  /// could take it (the helper then clones a supervisor for it, as before).
  [[nodiscard]] std::optional<std::pair<HelperStarted, int>> start(const ReceivedRun& run);

  /// The descriptors to wait on for the pool; poll results come back through handle().
  void add_pollfds(std::vector<pollfd>& fds) const;
  /// Acts on the poll results of the entries add_pollfds added, from `first` on.
  void handle(const std::vector<pollfd>& fds, std::size_t first);
  /// A child the helper reaped: true when it was a worker (its run, if any, gets `status`).
  bool reaped(pid_t pid, int status);
  /// Whether a worker is still alive.
  [[nodiscard]] bool empty() const noexcept { return workers_.empty(); }
  /// The server is gone: idle workers exit at once, busy ones after their run.
  void close_all();
  /// SIGKILLs every worker left.
  void kill_all() const;

 private:
  struct Worker {
    pid_t pid = -1;
    unique_fd socket;   // the helper's end; closed: the worker exits when it next reads
    unique_fd pidfd;
    unique_fd run;      // the run's socket while the worker has a run; empty when idle
    bool reported = false;  // the run ended and its status was sent: waiting for the server's hang-up
    [[nodiscard]] bool idle() const noexcept { return socket.valid() && !run.valid(); }
  };

  Worker* fork_worker();
  void release(Worker& worker);
  void rest();

  sigset_t child_mask_;
  std::vector<Worker> workers_;
  bool used_ = false;
};

}  // namespace pagi_exec::sys
