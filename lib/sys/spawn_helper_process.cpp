// SPDX-License-Identifier: Apache-2.0
// The spawn helper's loop: receive a run, clone its root (or hand it to a pooled supervisor,
// supervisor_pool.hpp), answer with the pid and a pidfd, send the wait status on the run's socket
// when the root is reaped (or its pooled supervisor says the run is over).
#include "sys/spawn_helper_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "sys/child.hpp"
#include "sys/fd_passing.hpp"
#include "sys/native.hpp"
#include "sys/spawn_helper.hpp"
#include "sys/supervisor.hpp"
#include "sys/supervisor_pool.hpp"
#include "sys/tree_wire.hpp"

namespace pagi_exec::sys {
namespace {

// How long the helper lets its runs end by themselves once the server is gone: their control
// pipes closed with it, and each supervisor then kills its tree (a SIGKILL would orphan a cwd
// command instead). A native init kills its namespace at once.
constexpr int hang_up_grace_ms = 2000;
// Parsed native plans kept by the helper; a server has one or two native spawners.
constexpr std::size_t max_cached_plans = 16;

// The helper process. Single-threaded: it may allocate freely, and a clone of it is cheap.
class Helper {
 public:
  Helper(int server, const sigset_t& child_mask) : server_(server), child_mask_(child_mask), pool_(child_mask) {
    locate_own_args(own_args_);  // what a native init blanks is now our copy of argv/environ
  }

  [[noreturn]] void run() {
    sigset_t chld;
    ::sigemptyset(&chld);
    ::sigaddset(&chld, SIGCHLD);
    sigfd_ = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd_ < 0) ::_exit(1);
    std::vector<pollfd> fds;
    for (;;) {
      fds.assign({{server_, POLLIN, 0}, {sigfd_, POLLIN, 0}});
      pool_.add_pollfds(fds);
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        ::_exit(1);
      }
      pool_.handle(fds, 2);  // before a reap or a new run changes the pool
      if (fds[1].revents != 0) reap();
      if ((fds[0].revents & POLLIN) != 0) {
        receive();
      } else if (fds[0].revents != 0) {
        hang_up();
      }
    }
  }

 private:
  struct Child {
    pid_t pid;
    unique_fd reply;  // the run's socket: the wait status goes there
  };
  struct CachedPlan {
    dev_t dev;
    ino_t ino;
    unique_fd fd;  // held: the inode cannot be reused for another plan while cached
    std::unique_ptr<NativeShared> plan;
  };

  void receive() {
    std::vector<unique_fd> fds;
    bool truncated = false;
    const ssize_t n = receive_with_fds(server_, buffer_.data(), buffer_.size(), fds, truncated);
    if (n == 0) hang_up();
    if (n < 0 || truncated) return;  // what came is dropped: the run's socket hangs up on the server
    auto run = ReceivedRun::decode(std::string_view(buffer_.data(), static_cast<std::size_t>(n)), std::move(fds));
    if (run && (*run)->reply >= 0) start(**run);  // without its socket a run cannot be answered
  }

  const NativeShared* plan_for(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return nullptr;
    for (const auto& cached : cache_) {
      if (cached.dev == st.st_dev && cached.ino == st.st_ino) return cached.plan.get();
    }
    auto read = read_native_shared(fd);
    if (!read) return nullptr;
    const int held = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (held < 0) return nullptr;
    if (cache_.size() >= max_cached_plans) cache_.erase(cache_.begin());
    cache_.push_back({st.st_dev, st.st_ino, unique_fd(held), std::make_unique<NativeShared>(std::move(*read))});
    return cache_.back().plan.get();
  }

  // Clones the run's root as the server would, then answers: pid (or errno) and a pidfd.
  void start(ReceivedRun& run) {
    if (run.native) {
      const NativeShared* plan = plan_for(run.native_shared);
      if (plan == nullptr) {
        answer(run.reply, HelperStarted{0, EINVAL}, -1);
        return;
      }
      run.native->root = &plan->root;
      run.native->seccomp = &plan->seccomp;
      run.native->arg_start = own_args_.arg_start;
      run.native->arg_end = own_args_.arg_end;
      run.native->env_start = own_args_.env_start;
      run.native->env_end = own_args_.env_end;
    } else if (const auto pooled = pool_.start(run)) {
      answer(run.reply, pooled->first, pooled->second);
      return;
    }
    const pid_t pid = raw_clone((run.native ? native_clone_flags(*run.native) : 0) | SIGCHLD);
    if (pid == 0) {
      ::sigprocmask(SIG_SETMASK, &child_mask_, nullptr);  // the signal mask the server had
      if (run.native) run_init_in_child(run.args, *run.native, run.maps_fd);
      supervise_in_child(run.args);
    }
    if (pid < 0) {
      answer(run.reply, HelperStarted{0, errno}, -1);
      return;
    }
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {  // without it the server could not signal the root safely
      const int err = errno;
      ::kill(pid, SIGKILL);
      answer(run.reply, HelperStarted{0, err}, -1);
      return;  // reaped with the next SIGCHLD; nobody waits for its status
    }
    const int reply = ::fcntl(run.reply, F_DUPFD_CLOEXEC, 3);
    answer(run.reply, HelperStarted{pid, 0}, pidfd.get());
    children_.push_back({pid, unique_fd(reply)});
  }

  static void answer(int reply, const HelperStarted& started, int pidfd) {
    (void)send_with_fds(reply, &started, sizeof started, &pidfd, pidfd >= 0 ? 1 : 0);
  }

  // Every child that exited: its wait status to its run, whose socket then closes.
  void reap() {
    signalfd_siginfo info[8];
    while (::read(sigfd_, info, sizeof info) > 0) {}
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      if (pool_.reaped(pid, status)) continue;
      for (auto it = children_.begin(); it != children_.end(); ++it) {
        if (it->pid != pid) continue;
        const std::int32_t wire = status;
        (void)::send(it->reply.get(), &wire, sizeof wire, MSG_NOSIGNAL);
        children_.erase(it);
        break;
      }
    }
  }

  // The server is gone: let its runs end themselves for a moment, kill what is left, leave.
  [[noreturn]] void hang_up() {
    const std::int64_t deadline = monotonic_us() + hang_up_grace_ms * 1000LL;
    pool_.close_all();
    while (!children_.empty() || !pool_.empty()) {
      const std::int64_t left_ms = (deadline - monotonic_us()) / 1000;
      if (left_ms <= 0) break;
      pollfd chld{sigfd_, POLLIN, 0};
      (void)::poll(&chld, 1, static_cast<int>(left_ms));
      reap();
    }
    for (const auto& child : children_) ::kill(child.pid, SIGKILL);
    pool_.kill_all();
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {}
    ::_exit(0);
  }

  int server_;
  int sigfd_ = -1;
  sigset_t child_mask_;
  NativeArgs own_args_;
  std::vector<char> buffer_ = std::vector<char>(max_run_message_bytes);
  std::vector<Child> children_;
  std::vector<CachedPlan> cache_;
  SupervisorPool pool_;  // cwd and bwrap runs' supervisors
};

}  // namespace

void run_spawn_helper(int socket, const sigset_t& server_mask, HelperKind kind) {
  const auto ready = static_cast<char>(kind);
  if (::send(socket, &ready, 1, MSG_NOSIGNAL) != 1) ::_exit(1);
  Helper(socket, server_mask).run();
}

}  // namespace pagi_exec::sys
