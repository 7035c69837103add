// SPDX-License-Identifier: Apache-2.0
// posix_spawnp + poll + waitpid, with nothing around them.
#include "bare_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace bare_server {
namespace {

// A pipe's two ends, closed when it goes out of scope (O_CLOEXEC: other requests' children,
// spawned concurrently, must not inherit them, or this one's EOF would never come).
struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_CLOEXEC) == 0) {
      read = fds[0];
      write = fds[1];
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() { close_fd(read); }
  void close_write() { close_fd(write); }
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Spawn attributes: the server blocks SIGTERM/SIGINT for its sigwait(), and a child inherits
// that mask; it must start with an empty one and default dispositions, as from a shell.
struct SpawnAttributes {
  posix_spawnattr_t attr{};
  SpawnAttributes() {
    ::posix_spawnattr_init(&attr);
    sigset_t set;
    sigemptyset(&set);
    ::posix_spawnattr_setsigmask(&attr, &set);
    for (const int signal : {SIGPIPE, SIGTERM, SIGINT}) sigaddset(&set, signal);
    ::posix_spawnattr_setsigdefault(&attr, &set);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  ~SpawnAttributes() { ::posix_spawnattr_destroy(&attr); }
};

// Reads both pipes until both reach EOF, whichever the command fills first.
void drain(Pipe& out, Pipe& err, ProcessResult& result) {
  std::array<char, 65536> buffer{};
  std::array<pollfd, 2> fds = {pollfd{out.read, POLLIN, 0}, pollfd{err.read, POLLIN, 0}};
  std::array<std::string*, 2> into = {&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const auto n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n > 0) {
        into[i]->append(buffer.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open;
      }
    }
  }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv) {
  ProcessResult result;
  if (argv.empty() || argv[0].empty()) return {127, {}, "no command"};
  Pipe out, err;
  if (out.read < 0 || err.read < 0) return {127, {}, std::string("pipe2: ") + std::strerror(errno)};

  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err.write, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));  // posix_spawn's type; not written
  args.push_back(nullptr);
  const SpawnAttributes attributes;
  pid_t pid = 0;
  const int spawn_error = ::posix_spawnp(&pid, args[0], &actions, &attributes.attr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  out.close_write();  // only the child writes now: its exit is our EOF
  err.close_write();
  if (spawn_error != 0) return {127, {}, argv[0] + ": " + std::strerror(spawn_error)};

  drain(out, err, result);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  return result;
}

}  // namespace bare_server
