// SPDX-License-Identifier: Apache-2.0
// The spawn helper: its process (Helper, forked by start_spawn_helper) and the server's side of
// the protocol described in the header.
//
// What the helper holds: it is forked before main() reads configuration, tokens or TLS keys, so
// its memory has none of them; afterwards it only ever holds its socket, a signalfd, the sealed
// native plans (root plan, seccomp filter: no secret) and, for the moment of one clone, one run's
// descriptors. Who can talk to it: only holders of the socketpair's other end, which is
// close-on-exec and never passed on: the server process (a fork of it uses the helper only if
// start_via_helper's owner check passes, which a fork fails).
#include "sys/spawn_helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "pagi_exec/spawner.hpp"
#include "sys/child.hpp"
#include "sys/native.hpp"
#include "sys/supervisor.hpp"
#include "sys/tree_wire.hpp"

namespace pagi_exec::sys {
namespace {

// Set once by start_spawn_helper, before any thread exists; only read afterwards.
struct HelperLink {
  int fd = -1;          // the server's end of the shared socket
  pid_t owner = -1;     // the process that started the helper (a fork of it must not use it)
  uid_t euid = 0;       // its credentials then: the helper keeps them
  gid_t egid = 0;
  pid_t helper = -1;
};
HelperLink helper_link;
std::atomic<bool> helper_gone{false};
std::atomic<std::uint64_t> started_via_helper{0};
std::atomic<std::uint64_t> started_direct{0};

// How long the helper lets its runs end by themselves once the server is gone: their control
// pipes closed with it, and each supervisor then kills its tree (a SIGKILL would orphan a cwd
// command instead). A native init kills its namespace at once.
constexpr int hang_up_grace_ms = 2000;
// Parsed native plans kept by the helper; a server has one or two native spawners.
constexpr std::size_t max_cached_plans = 16;

// A SEQPACKET record with descriptors attached. Returns the bytes received (0: hang-up), -1 on
// error (errno); the descriptors land in `fds`, close-on-exec. `truncated`: the record or its
// descriptors did not fit.
ssize_t receive_with_fds(int socket, void* data, std::size_t size, std::vector<unique_fd>& fds, bool& truncated) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_run_fds)];
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return n;
}

// One record with descriptors attached; never raises SIGPIPE. 0 or errno.
int send_with_fds(int socket, const void* data, std::size_t size, const int* fds, std::size_t count) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_run_fds)] = {};
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
  }
  while (::sendmsg(socket, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int count_threads() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// The helper process. Single-threaded: it may allocate freely, and a clone of it is cheap.
class Helper {
 public:
  Helper(int server, const sigset_t& child_mask) : server_(server), child_mask_(child_mask) {
    locate_own_args(own_args_);  // what a native init blanks is now our copy of argv/environ
  }

  [[noreturn]] void run() {
    sigset_t chld;
    ::sigemptyset(&chld);
    ::sigaddset(&chld, SIGCHLD);
    sigfd_ = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd_ < 0) ::_exit(1);
    for (;;) {
      pollfd fds[2] = {{server_, POLLIN, 0}, {sigfd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        ::_exit(1);
      }
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
    if (run) start(**run);
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
    while (!children_.empty()) {
      const std::int64_t left_ms = (deadline - monotonic_us()) / 1000;
      if (left_ms <= 0) break;
      pollfd chld{sigfd_, POLLIN, 0};
      (void)::poll(&chld, 1, static_cast<int>(left_ms));
      reap();
    }
    for (const auto& child : children_) ::kill(child.pid, SIGKILL);
    for (const auto& child : children_) ::waitpid(child.pid, nullptr, 0);
    ::_exit(0);
  }

  int server_;
  int sigfd_ = -1;
  sigset_t child_mask_;
  NativeArgs own_args_;
  std::vector<char> buffer_ = std::vector<char>(max_run_message_bytes);
  std::vector<Child> children_;
  std::vector<CachedPlan> cache_;
};

// The helper's side of the fork: bound to the server's life, holding nothing of it but the
// socket (stdio on /dev/null, so no descriptor it receives takes 0-2). Never returns.
[[noreturn]] void become_helper(int socket, pid_t server, const sigset_t& server_mask) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != server) ::_exit(0);  // the server died before the line above
  ::prctl(PR_SET_NAME, "pagi-spawner");
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) ::_exit(1);
  for (int fd = 0; fd < 3; ++fd) {
    if (fd != devnull) ::dup2(devnull, fd);
  }
  if (!close_fds_except(&socket, 1)) ::_exit(1);
  // Reaping is how runs learn their end: children must not be reaped automatically (SIG_IGN).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);
  // Only SIGKILL, the server's death or its hang-up end the helper: a Ctrl-C or SIGTERM aimed at
  // the server's process group must not take the spawner away mid-run.
  sigset_t blocked;
  ::sigemptyset(&blocked);
  for (const int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) ::sigaddset(&blocked, sig);
  ::sigprocmask(SIG_SETMASK, &blocked, nullptr);
  const char ready = 1;
  if (::send(socket, &ready, 1, MSG_NOSIGNAL) != 1) ::_exit(1);
  Helper(socket, server_mask).run();
}

bool helper_usable() noexcept {
  return helper_link.fd >= 0 && !helper_gone.load(std::memory_order_relaxed) && ::getpid() == helper_link.owner &&
         ::geteuid() == helper_link.euid && ::getegid() == helper_link.egid;
}

// The shared socket hung up: the helper exited. (A run's socket may also hang up because the
// helper dropped that one message.)
bool helper_hung_up() noexcept {
  pollfd shared{helper_link.fd, 0, 0};
  return ::poll(&shared, 1, 0) > 0 && (shared.revents & (POLLHUP | POLLERR)) != 0;
}

// From now on runs are cloned here. The helper is our child: reap it if it is gone already.
void give_up_helper() noexcept {
  if (!helper_gone.exchange(true)) ::waitpid(helper_link.helper, nullptr, WNOHANG);
}

}  // namespace

Result<std::optional<TreeRoot>> start_via_helper(const ChildArgs& args, const NativeArgs* native, int maps_fd,
                                                 int native_shared) {
  if (!helper_usable() || (native != nullptr && native_shared < 0)) return std::nullopt;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return fail(Errc::spawn_failed, "socketpair for the spawn helper", errno);
  }
  unique_fd ours(pair[0]);
  unique_fd theirs(pair[1]);
  const RunMessage message = encode_run(args, native, maps_fd, native_shared, theirs.get());
  if (message.bytes.size() > max_run_message_bytes || message.fds.size() > max_run_fds) return std::nullopt;
  if (const int err = send_with_fds(helper_link.fd, message.bytes.data(), message.bytes.size(), message.fds.data(),
                                    message.fds.size());
      err != 0) {
    if (err != EPIPE && err != ECONNRESET && err != ENOTCONN) {
      return fail(Errc::spawn_failed, "send a run to the spawn helper", err);
    }
    give_up_helper();  // nothing was queued: clone it here
    return std::nullopt;
  }
  theirs.reset();  // only the helper holds its end now: its death or drop hangs ours up
  HelperStarted started;
  std::vector<unique_fd> pidfd;
  bool truncated = false;
  ssize_t n = 0;
  while ((n = receive_with_fds(ours.get(), &started, sizeof started, pidfd, truncated)) < 0 && errno == EINTR) {}
  if (n != static_cast<ssize_t>(sizeof started) || truncated) {
    if (helper_hung_up()) give_up_helper();
    return fail(Errc::spawn_failed, "the spawn helper went away before starting the run", n < 0 ? errno : 0);
  }
  if (started.pid <= 0) return fail(Errc::spawn_failed, "clone in the spawn helper", started.clone_errno);
  if (pidfd.size() != 1) return fail(Errc::internal, "the spawn helper sent no pidfd");
  started_via_helper.fetch_add(1, std::memory_order_relaxed);
  return TreeRoot::via_helper(started.pid, std::move(pidfd.front()), std::move(ours));
}

void count_direct_start() noexcept { started_direct.fetch_add(1, std::memory_order_relaxed); }

SpawnCounts spawn_counts() noexcept {
  return {started_via_helper.load(std::memory_order_relaxed), started_direct.load(std::memory_order_relaxed)};
}

pid_t spawn_helper_pid() noexcept { return helper_link.helper; }

}  // namespace pagi_exec::sys

namespace pagi_exec {

Result<void> start_spawn_helper() {
  using sys::helper_link;
  const int threads = sys::count_threads();
  if (threads < 0) return fail(Errc::spawn_failed, "start_spawn_helper: cannot read /proc/self/status");
  if (threads != 1) {
    return fail(Errc::spawn_failed, "start_spawn_helper: the process has " + std::to_string(threads) +
                                        " threads; call it first thing in main(), before any thread exists");
  }
  if (helper_link.fd >= 0) return fail(Errc::spawn_failed, "start_spawn_helper: the helper is already started");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return fail(Errc::spawn_failed, "start_spawn_helper: socketpair", errno);
  }
  sigset_t mask;
  ::sigprocmask(SIG_SETMASK, nullptr, &mask);
  const pid_t server = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(pair[0]);
    ::close(pair[1]);
    return fail(Errc::spawn_failed, "start_spawn_helper: fork", err);
  }
  if (pid == 0) {
    ::close(pair[0]);
    sys::become_helper(pair[1], server, mask);
  }
  ::close(pair[1]);
  // Its first record says it is set up (bound to our life, renamed); EOF: it died first.
  char ready = 0;
  ssize_t n = 0;
  while ((n = ::recv(pair[0], &ready, 1, 0)) < 0 && errno == EINTR) {}
  if (n != 1) {
    ::close(pair[0]);
    ::waitpid(pid, nullptr, 0);
    return fail(Errc::spawn_failed, "start_spawn_helper: the helper exited while starting");
  }
  helper_link = {.fd = pair[0], .owner = server, .euid = ::geteuid(), .egid = ::getegid(), .helper = pid};
  return {};
}

}  // namespace pagi_exec
