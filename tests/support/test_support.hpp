// SPDX-License-Identifier: Apache-2.0
// Test helpers: temporary folders, executors on them, process probes, skips with reasons.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <pagi_exec/pagi_exec.hpp>

namespace test_support {

// Skips a reader and meson can see. doctest 2.4.9 only skips before a case runs (`doctest::skip`,
// which takes no reason), and counts a case that returns early as passed. These record why; the
// listener in tests/doctest_main.cpp prints every skipped case with its reason, counts it apart
// from the cases that ran, and makes the binary exit 77 (meson's SKIP) when no case in it ran.
namespace skips {
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::string> decorated;  // "file:line" of a case skipped by skip_if -> why
  std::map<std::string, std::string> opt_in;     // "file:line" of a case not asked for -> how to ask
  std::vector<std::string> case_reasons;         // skip_case calls in the running pass of a case
  std::vector<std::string> part_reasons;         // skip_part calls in the running case
};
inline Registry& registry() {
  static Registry r;
  return r;
}
inline std::string where(const char* file, unsigned line) { return std::string(file) + ":" + std::to_string(line); }
}  // namespace skips

/// A case decorator for a condition known before the case runs:
/// `TEST_CASE("x" * test_support::skip_if(!is_root(), "needs root"))`.
struct skip_if {
  bool skip;
  const char* reason;
  void fill(doctest::detail::TestCase& tc) const {
    tc.m_skip = skip;
    if (!skip) return;
    auto& r = skips::registry();
    const std::lock_guard lock(r.mutex);
    r.decorated[skips::where(tc.m_file.c_str(), tc.m_line)] = reason;
  }
};

/// A case decorator for a case that runs only when asked (it produces something rather than tests
/// this machine): `TEST_CASE("x" * test_support::only_when_asked(!std::getenv("X"), "set X"))`.
/// Reported as not asked for, apart from the skips. A plain `doctest::skip` carries no reason and
/// is reported as skipped.
struct only_when_asked {
  bool not_asked;
  const char* how;
  void fill(doctest::detail::TestCase& tc) const {
    tc.m_skip = not_asked;
    if (!not_asked) return;
    auto& r = skips::registry();
    const std::lock_guard lock(r.mutex);
    r.opt_in[skips::where(tc.m_file.c_str(), tc.m_line)] = how;
  }
};

/// Marks the running case (or the running pass of it, with subcases) as skipped because this
/// machine cannot run it; the caller returns right after. Checks made before it still count.
inline void skip_case(const std::string& reason, std::source_location at = std::source_location::current()) {
  auto& r = skips::registry();
  const std::lock_guard lock(r.mutex);
  r.case_reasons.push_back(reason + " (" + skips::where(at.file_name(), at.line()) + ")");
}

/// Records that one part of the running case cannot run here; the rest of the case runs and the
/// case counts as run, listed as partly skipped with this reason.
inline void skip_part(const std::string& reason, std::source_location at = std::source_location::current()) {
  auto& r = skips::registry();
  const std::lock_guard lock(r.mutex);
  r.part_reasons.push_back(reason + " (" + skips::where(at.file_name(), at.line()) + ")");
}

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
  // read(2), not an ifstream: a process that exits between the open and the read makes the read
  // fail with ESRCH, which libstdc++'s filebuf throws as an exception. Gone, either way.
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[4096];
  const auto n = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  if (n <= 0) return false;
  const std::string all(buffer, static_cast<std::size_t>(n));
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

/// Lets a command blocked in `read a < FIFO` go on: the test's half of a handshake, so the order
/// of events is proven rather than slept for. Waits for the reader to open the FIFO; false when
/// none does within ~20 s (the command died: the test then fails instead of hanging).
inline bool release(const std::filesystem::path& fifo) {
  for (int i = 0; i < 2000; ++i) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO: no reader yet
    if (fd >= 0) {
      const bool written = ::write(fd, "go\n", 3) == 3;
      ::close(fd);
      return written;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// What work in a forked child said, and how far the child's resident memory rose while it ran.
struct ChildPeak {
  std::string said;
  long grown_kib = -1;  // -1: the child did not report
};

/// Runs `work` (returning a summary for the parent to check) in a forked child, and measures it by
/// the child's own peak RSS, which starts at the fork at what the child then holds. The test
/// process's high-water mark cannot serve: an earlier case of the same binary may have set it
/// higher, and a rise under it would go unseen.
template <class Work>
ChildPeak peak_in_child(Work work) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::close(fds[0]);
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    std::string said = work();
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    const std::string report = std::to_string(after.ru_maxrss - before.ru_maxrss) + "\n" + said;
    for (std::size_t done = 0; done < report.size();) {
      const ssize_t n = ::write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) ::_exit(1);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);  // no doctest teardown in the child
  }
  ::close(fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ChildPeak peak;
  const auto newline = report.find('\n');
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || newline == std::string::npos) return peak;
  peak.grown_kib = std::stol(report.substr(0, newline));
  peak.said = report.substr(newline + 1);
  return peak;
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
