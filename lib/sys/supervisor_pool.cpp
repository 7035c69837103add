// SPDX-License-Identifier: Apache-2.0
// The spawn helper's pool of supervisors (see the header for why and the protocol).
#include "sys/supervisor_pool.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "sys/child.hpp"
#include "sys/fd_passing.hpp"
#include "sys/supervisor.hpp"
#include "sys/tree_wire.hpp"

namespace pagi_exec::sys {
namespace {

// Idle workers kept once no run is in flight: a few, so the next burst starts without forks and
// the process count at rest does not depend on the last burst's size.
constexpr std::size_t idle_workers_at_rest = 4;
// Beyond this many runs in flight at once the helper clones per run again.
constexpr std::size_t max_workers = 1024;

constexpr char run_done = 'd';

// The worker's life: set up once, then one run per record until the helper hangs up. A record
// that is not a whole run, or a run's failed step, ends the worker; the helper reaps it and
// reports its status for the run it had.
[[noreturn]] void serve_as_worker(int socket) {
  const int keep[] = {socket};
  if (!close_fds_except(keep, 1) || !become_pooled_supervisor()) ::_exit(1);
  std::vector<char> buffer(max_run_message_bytes);
  for (;;) {
    std::vector<unique_fd> fds;
    bool truncated = false;
    const ssize_t n = receive_with_fds(socket, buffer.data(), buffer.size(), fds, truncated);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(0);  // the helper is gone or let us go
    if (truncated) ::_exit(1);
    auto run = ReceivedRun::decode(std::string_view(buffer.data(), static_cast<std::size_t>(n)), std::move(fds));
    if (!run || (*run)->native) ::_exit(1);
    supervise_pooled((*run)->args, socket);
    // Every descriptor of the run closed before we say it is over (the output pipes were closed
    // during the run already: by number, so nothing is closed twice).
    if (!close_fds_except(keep, 1)) ::_exit(1);
    (*run)->forget_descriptors();
    if (::send(socket, &run_done, 1, MSG_NOSIGNAL) != 1) ::_exit(0);
  }
}

}  // namespace

SupervisorPool::Worker* SupervisorPool::fork_worker() {
  if (workers_.size() >= max_workers) return nullptr;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return nullptr;
  unique_fd ours(pair[0]);
  unique_fd theirs(pair[1]);
  const pid_t pid = raw_clone(SIGCHLD);
  if (pid == 0) {
    ::sigprocmask(SIG_SETMASK, &child_mask_, nullptr);
    serve_as_worker(theirs.get());
  }
  if (pid < 0) return nullptr;
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {  // the server could not signal it safely: not a worker
    ::kill(pid, SIGKILL);
    return nullptr;  // reaped with the next SIGCHLD (reaped() does not know it)
  }
  Worker worker;
  worker.pid = pid;
  worker.socket = std::move(ours);
  worker.pidfd = std::move(pidfd);
  workers_.push_back(std::move(worker));
  return &workers_.back();
}

std::optional<std::pair<HelperStarted, int>> SupervisorPool::start(const ReceivedRun& run) {
  used_ = true;
  auto idle = std::find_if(workers_.begin(), workers_.end(), [](const Worker& w) { return w.idle(); });
  Worker* worker = idle != workers_.end() ? &*idle : fork_worker();
  if (worker == nullptr) return std::nullopt;
  const RunMessage message = encode_run(run.args, nullptr, -1, -1, -1);
  unique_fd reply(::fcntl(run.reply, F_DUPFD_CLOEXEC, 3));
  if (!reply || send_with_fds(worker->socket.get(), message.bytes.data(), message.bytes.size(), message.fds.data(),
                              message.fds.size()) != 0) {
    ::kill(worker->pid, SIGKILL);  // in doubt whether it holds the run: it goes, reaped() removes it
    worker->socket.reset();
    return std::nullopt;
  }
  worker->run = std::move(reply);
  worker->reported = false;
  return std::make_pair(HelperStarted{worker->pid, 0}, worker->pidfd.get());
}

void SupervisorPool::add_pollfds(std::vector<pollfd>& fds) const {
  for (const auto& worker : workers_) {
    if (!worker.run) {
      fds.push_back({-1, 0, 0});  // idle: nothing to wait for (its death comes as SIGCHLD)
    } else if (!worker.reported) {
      fds.push_back({worker.socket.valid() ? worker.socket.get() : -1, POLLIN, 0});  // the run's end
    } else {
      fds.push_back({worker.run.get(), POLLIN | POLLRDHUP, 0});  // the server's hang-up
    }
  }
}

void SupervisorPool::handle(const std::vector<pollfd>& fds, std::size_t first) {
  // add_pollfds made one entry per worker, in order; nothing here adds or removes workers.
  for (std::size_t i = 0; i < workers_.size() && first + i < fds.size(); ++i) {
    Worker& worker = workers_[i];
    if (fds[first + i].revents == 0 || !worker.run) continue;
    if (!worker.reported) {
      char byte = 0;
      const auto n = ::recv(worker.socket.get(), &byte, 1, MSG_DONTWAIT);
      if (n == 1 && byte == run_done) {
        const std::int32_t status = 0;  // what a supervisor that exited after its run reports
        (void)::send(worker.run.get(), &status, sizeof status, MSG_NOSIGNAL);
        worker.reported = true;
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        worker.socket.reset();  // it died: reaped() sends its status
      }
      continue;
    }
    char byte = 0;
    const auto n = ::recv(worker.run.get(), &byte, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    release(worker);  // the server hung up (it never writes on a run's socket)
  }
  rest();
}

void SupervisorPool::release(Worker& worker) {
  worker.run.reset();
  worker.reported = false;
}

// No run in flight: exactly idle_workers_at_rest workers stay, so a server at rest has a fixed
// number of processes whatever its last burst was.
void SupervisorPool::rest() {
  if (!used_ || std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.run.valid(); })) return;
  std::size_t kept = 0;
  for (auto& worker : workers_) {
    if (!worker.socket) continue;
    if (++kept > idle_workers_at_rest) worker.socket.reset();  // it exits at EOF; reaped() removes it
  }
  while (kept < idle_workers_at_rest && fork_worker() != nullptr) ++kept;
}

bool SupervisorPool::reaped(pid_t pid, int status) {
  const auto it = std::find_if(workers_.begin(), workers_.end(), [pid](const Worker& w) { return w.pid == pid; });
  if (it == workers_.end()) return false;
  if (it->run && !it->reported) {
    const std::int32_t wire = status;
    (void)::send(it->run.get(), &wire, sizeof wire, MSG_NOSIGNAL);
  }
  workers_.erase(it);
  rest();
  return true;
}

void SupervisorPool::close_all() {
  used_ = false;  // no replacements
  for (auto& worker : workers_) worker.socket.reset();
}

void SupervisorPool::kill_all() const {
  for (const auto& worker : workers_) ::kill(worker.pid, SIGKILL);
}

}  // namespace pagi_exec::sys
