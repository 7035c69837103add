// SPDX-License-Identifier: Apache-2.0
// One lever of the native sandbox, measured: a child that creates its own network namespace,
// one that joins a namespace made once and shared (what native did), and one that joins a fresh
// namespace made beforehand and discarded after (what native's pool does: the making is off the
// timed path, as on the pool's thread; dropping the last reference is timed). Run as root.
//
//   build/bench/netns_bench [ROUNDS]      (default 300; --help says the same)
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char* usage = R"(usage: netns_bench [ROUNDS]

Times a child that creates its own network namespace, one that joins a namespace made once and
shared, and one that joins a fresh namespace made beforehand (the per-run pool's way), against a
plain fork, one of each per round; prints p50 and p99 in ms. Run as root.

  ROUNDS   interleaved rounds (default 300)
  --help   this text
)";

// ROUNDS from the command line: 300 when absent, 0 when not a number from 1 to 1000000.
int rounds_from(int argc, char** argv) {
  if (argc < 2) return 300;
  char* end = nullptr;
  const long n = std::strtol(argv[1], &end, 10);
  return argc == 2 && *end == '\0' && n >= 1 && n <= 1'000'000 ? static_cast<int>(n) : 0;
}

// The namespace to join: made by a child that unshares and waits; its /proc entry keeps it.
int make_shared_netns() {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t holder = ::fork();
  if (holder == 0) {
    ::unshare(CLONE_NEWNET);
    (void)::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  char byte;
  (void)::read(ready[0], &byte, 1);
  const int fd = ::open(("/proc/" + std::to_string(holder) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(usage, stdout);
    return 0;
  }
  const int rounds = rounds_from(argc, argv);
  if (rounds == 0) {
    std::fprintf(stderr, "netns_bench: ROUNDS must be a number from 1 to 1000000\n%s", usage);
    return 2;
  }
  const int shared = make_shared_netns();
  if (shared < 0) {
    std::fprintf(stderr, "cannot make a network namespace (not root?)\n");
    return 77;
  }
  const char* names[] = {"fork only", "fork + new netns", "fork + join shared", "fork + join fresh"};
  constexpr int modes = 4;
  std::vector<double> ms[modes];
  for (int i = 0; i < rounds; ++i) {
    for (int mode = 0; mode < modes; ++mode) {  // interleaved: noise hits every variant alike
      const int fresh = mode == 3 ? make_shared_netns() : -1;  // the pool's work, not timed
      const int join = mode == 2 ? shared : fresh;
      const auto t0 = std::chrono::steady_clock::now();
      const auto child = static_cast<pid_t>(::syscall(SYS_clone, (mode == 1 ? CLONE_NEWNET : 0) | SIGCHLD, 0, 0, 0, 0));
      if (child == 0) {
        if (join >= 0 && ::setns(join, CLONE_NEWNET) != 0) ::_exit(1);
        ::_exit(0);
      }
      ::waitpid(child, nullptr, 0);
      if (fresh >= 0) ::close(fresh);  // the last reference: the kernel queues its clean-up
      ms[mode].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::printf("network namespace per execution vs joined, %d interleaved rounds (ms)\n", rounds);
  for (int mode = 0; mode < modes; ++mode) {
    auto& v = ms[mode];
    std::sort(v.begin(), v.end());
    std::printf("%-20s p50 %.3f  p99 %.3f\n", names[mode], v[v.size() / 2], v[v.size() * 99 / 100]);
  }
  return 0;
}
