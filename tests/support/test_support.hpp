// SPDX-License-Identifier: Apache-2.0
// Test helpers: temporary folders, executors on them, process probes.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

namespace test_support {

/// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pagi-exec-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    // Reachable, not listable, by the unprivileged uid commands run as (a sandbox dir inside
    // must be, or Executor::open refuses it).
    if (::chmod(pattern.c_str(), 0711) != 0) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Held by one test process on this host at a time (flock on a file under /tmp). For tests that
/// exhaust something every test binary shares (a uid's inotify allowance, the default id pool's
/// ids): the same case in `x` and `x_via_helper` runs in parallel otherwise and each sees the
/// other's use. Waiting on the lock is a handshake, not a sleep.
class HostLock {
 public:
  explicit HostLock(const std::string& name) {
    const auto path = std::filesystem::temp_directory_path() / ("pagi-exec-test-" + name + ".lock");
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) std::abort();
  }
  ~HostLock() { ::close(fd_); }
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;

 private:
  int fd_ = -1;
};

/// An executor with the seed policy over `root`, or aborts (tests cannot go on without one).
inline pagi_exec::Executor make_executor(const std::filesystem::path& root,
                                         pagi_exec::Isolation isolation = pagi_exec::Isolation::cwd,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                         pagi_exec::OutputCaps caps = {}) {
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = root,
                                           .isolation = isolation,
                                           .limits = {.timeout = timeout, .output = caps}});
  if (!sandbox) std::abort();
  auto executor = pagi_exec::Executor::open({.policy = pagi_exec::Policy::seed_default(), .sandbox = *sandbox});
  if (!executor) std::abort();
  return *executor;
}

/// A shell command run by the all-powerful seed twin.
inline pagi_exec::Request shell(std::string line) {
  return pagi_exec::Request{.tool = "command_exec", .args = {std::move(line)}, .twin_id = "twin-aegis"};
}

/// True while a process with this pid exists (zombies count as gone: they run nothing).
inline bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  return close != std::string::npos && close + 2 < all.size() && all[close + 2] != 'Z';
}

/// Polls until `pid` is gone or ~5 s pass; returns whether it is gone. Not a timing assertion:
/// the bound only keeps a broken build from hanging.
inline bool wait_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!process_alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !process_alive(pid);
}

/// What a program printed (stdout, and stderr when asked) and its exit status (-1: killed).
struct Ran {
  int status = -1;
  std::string out;
};

/// Runs argv[0] with argv, waits, and returns its exit status and stdout (plus stderr when
/// `with_stderr`).
inline Ran run_program(const std::vector<std::string>& argv, bool with_stderr = false) {
  int fds[2];
  if (::pipe(fds) != 0) std::abort();
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    if (with_stderr) ::dup2(fds[1], 2);
    ::close(fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(99);
  }
  ::close(fds[1]);
  Ran ran;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) ran.out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// Allocated bytes under `dir` (itself included), as du(1) counts them, by the test's own walk.
inline std::uint64_t du(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  struct stat st{};
  if (::lstat(dir.c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (::lstat(entry.path().c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

/// Reads a whole file, or "" when it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Live host processes whose argv is exactly `cmdline` (NUL-terminated arguments, as
/// /proc/<pid>/cmdline holds them). Processes come and go while /proc is read: one that vanishes
/// is skipped; a listing that fails is read again, and after a few failures this throws rather
/// than answer "none" (which would let a probe pass without looking).
inline std::vector<pid_t> pids_with_cmdline(const std::string& cmdline) {
  std::error_code ec;
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<pid_t> found;
    ec.clear();
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
      const auto name = it->path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const auto pid = static_cast<pid_t>(std::stol(name));
      if (read_file(it->path() / "cmdline") == cmdline && process_alive(pid)) found.push_back(pid);
    }
    if (!ec) return found;
  }
  throw std::runtime_error("cannot list /proc: " + ec.message());
}

}  // namespace test_support
