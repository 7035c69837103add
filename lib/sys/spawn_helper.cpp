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

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "pagi_exec/spawner.hpp"
#include "sys/child.hpp"
#include "sys/native.hpp"
#include "sys/supervisor.hpp"
#include "sys/fd_passing.hpp"
#include "sys/spawn_helper_process.hpp"
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
  HelperKind kind = HelperKind::in_process;
};
HelperLink helper_link;
std::atomic<bool> helper_gone{false};
std::atomic<std::uint64_t> started_via_helper{0};
std::atomic<std::uint64_t> started_direct{0};


int count_threads() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// The signals of `mask` as bits 0-63 (signal n is bit n-1), for the pagi-spawner's command line.
std::uint64_t mask_bits(const sigset_t& mask) {
  std::uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (::sigismember(&mask, sig) == 1) bits |= std::uint64_t{1} << (sig - 1);
  }
  return bits;
}

// The helper's side of the fork: bound to the server's life, holding nothing of it but the
// socket (stdio on /dev/null, so no descriptor it receives takes 0-2). With `program`, it
// becomes that small static program, whose clones copy a handful of mappings instead of the
// host's hundreds (the cost of each run's clone); if the exec fails it serves in-process.
// Single-threaded here, so it may allocate. Never returns.
[[noreturn]] void become_helper(int socket, pid_t server, const sigset_t& server_mask, const char* program) {
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
  if (program != nullptr) {
    // The parent-death signal, the blocked signals and SIGCHLD's default all survive execve.
    const std::string fd_arg = std::to_string(socket);
    const std::string mask_arg = std::to_string(mask_bits(server_mask));
    const char* const argv[] = {"pagi-spawner", fd_arg.c_str(), mask_arg.c_str(), nullptr};
    const char* const envp[] = {nullptr};
    ::fcntl(socket, F_SETFD, 0);
    ::execve(program, const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::fcntl(socket, F_SETFD, FD_CLOEXEC);
  }
  run_spawn_helper(socket, server_mask, HelperKind::in_process);
}

// Owned by root or us, and writable by nobody else.
bool only_owner_writes(const struct stat& st) noexcept {
  return (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 && (st.st_uid == 0 || st.st_uid == ::geteuid());
}

// A program run as root must be as trusted as the host: a regular file nobody but its owner
// (root or us) may change, nor replace: every folder above it (links resolved) is the owner's
// alone, or sticky (/tmp), where only a file's owner may rename or delete it.
Result<void> check_program(const std::filesystem::path& program) {
  struct stat st {};
  if (::stat(program.c_str(), &st) != 0) return fail(Errc::spawn_failed, "start_spawn_helper: " + program.string(), errno);
  if (!S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR) == 0) {
    return fail(Errc::spawn_failed, "start_spawn_helper: " + program.string() + " is not an executable file");
  }
  if (!only_owner_writes(st)) {
    return fail(Errc::spawn_failed, "start_spawn_helper: " + program.string() +
                                        " may be changed by others (group/other-writable, or owned by another user)");
  }
  std::error_code ec;
  const auto real = std::filesystem::canonical(program, ec);
  if (ec) return fail(Errc::spawn_failed, "start_spawn_helper: resolve " + program.string(), ec.value());
  for (auto folder = real.parent_path();; folder = folder.parent_path()) {
    if (::stat(folder.c_str(), &st) != 0) {
      return fail(Errc::spawn_failed, "start_spawn_helper: " + folder.string(), errno);
    }
    if (!only_owner_writes(st) && (st.st_mode & S_ISVTX) == 0) {
      return fail(Errc::spawn_failed, "start_spawn_helper: " + program.string() + " may be replaced by others: " +
                                          folder.string() + " is group/other-writable or owned by another user");
    }
    if (folder == folder.root_path()) return {};
  }
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

bool spawn_helper_is_program() noexcept { return helper_link.helper > 0 && helper_link.kind == HelperKind::program; }

}  // namespace pagi_exec::sys

namespace pagi_exec {

Result<void> start_spawn_helper(const std::filesystem::path& program) {
  using sys::helper_link;
  std::error_code ec;
  const bool exec_program = !program.empty() && std::filesystem::exists(program, ec);
  if (exec_program) {
    if (auto trusted = sys::check_program(program); !trusted) return error_of(trusted);
  }
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
    sys::become_helper(pair[1], server, mask, exec_program ? program.c_str() : nullptr);
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
  helper_link = {.fd = pair[0], .owner = server, .euid = ::geteuid(), .egid = ::getegid(), .helper = pid,
                 .kind = static_cast<sys::HelperKind>(ready)};
  return {};
}

std::filesystem::path spawner_program(const char* built_in) {
  const char* chosen = std::getenv("PAGI_EXEC_SPAWNER");
  return chosen != nullptr ? chosen : built_in;
}

// The running program's real path is the kernel's record of what was exec'd: a link to the host
// or a changed working folder does not move it.
Result<std::filesystem::path> spawner_program(const SpawnerLocation& where) {
  if (const char* chosen = std::getenv("PAGI_EXEC_SPAWNER"); chosen != nullptr) return chosen;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return fail(Errc::spawn_failed, "find the pagi-spawner program: read /proc/self/exe", ec.value());
  if (!where.build_root.empty()) {
    const auto root = std::filesystem::weakly_canonical(where.build_root, ec);
    if (!ec && std::mismatch(root.begin(), root.end(), self.begin(), self.end()).first == root.end()) return where.built;
  }
  const auto installed = (self.parent_path() / where.from_bindir).lexically_normal();
  if (!std::filesystem::exists(installed, ec)) {
    return fail(Errc::spawn_failed, "the pagi-spawner program is not installed beside " + self.string() + " (looked for " +
                                        installed.string() +
                                        "); set PAGI_EXEC_SPAWNER to its path, or to empty to clone runs in-process");
  }
  return installed;
}

}  // namespace pagi_exec
