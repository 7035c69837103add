// SPDX-License-Identifier: Apache-2.0
// The pagi-exec command-line host: check's exit status, run's output, and the lifeline — when
// the process hosting the library dies, the execution's whole tree dies with it.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <thread>

#include "test_support.hpp"

using test_support::TempDir;

namespace {

struct Ran {
  int status = -1;
  std::string out;
};

// Runs the built pagi-exec with `args`, capturing stdout (stderr to /dev/null).
Ran run_cli(const std::vector<std::string>& args) {
  const char* bin = std::getenv("PAGI_EXEC_CLI");
  REQUIRE(bin != nullptr);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    std::vector<char*> argv{const_cast<char*>(bin)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin, argv.data());
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

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("check prints the decision and exits 0 when allowed, 1 when refused") {
    const auto allowed = run_cli({"check", "--twin", "twin-trace", "vector_query"});
    CHECK(allowed.status == 0);
    CHECK(allowed.out.rfind("allowed: ", 0) == 0);
    const auto refused = run_cli({"check", "--twin", "twin-trace", "--", "echo", "hi"});
    CHECK(refused.status == 1);
    CHECK(refused.out.rfind("refused: twin 'twin-trace' is not granted 'echo'", 0) == 0);
    CHECK(run_cli({"check", "--twin", "twin-aegis", "--", "/usr/bin/rm", "-rf", "/"}).status == 1);
  }

  TEST_CASE("run prints the command's output and exits with its status") {
    TempDir dir;
    const auto ran = run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", dir.path().string(), "--",
                              "sh", "-c", "echo hi; exit 3"});
    CHECK(ran.status == 3);
    CHECK(ran.out == "hi\n");
  }

  TEST_CASE("bad usage is exit status 2") {
    CHECK(run_cli({"run", "--twin", "twin-aegis", "--isolation", "vm", "--", "true"}).status == 2);
    CHECK(run_cli({"check"}).status == 2);
  }

  TEST_CASE("killing the host with SIGKILL kills the execution's whole tree") {
    TempDir dir;
    const auto pids = dir.path() / "pids";
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    const std::string line = "(setsid sh -c 'echo $$ >> " + pids.string() + "; exec sleep 1000' &); "
                             "echo $$ >> " + pids.string() + "; sleep 1000";
    const pid_t host = ::fork();
    REQUIRE(host >= 0);
    if (host == 0) {
      const std::string sandbox = (dir.path() / "sb").string();
      ::execl(bin, bin, "run", "--twin", "twin-aegis", "--sandbox-dir", sandbox.c_str(), "--timeout-ms", "600000",
              "--", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(99);
    }
    std::string text;
    for (int i = 0; i < 500; ++i) {  // wait (bounded) until both processes wrote their pid
      text = test_support::read_file(pids);
      if (std::count(text.begin(), text.end(), '\n') >= 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(host, SIGKILL);
    ::waitpid(host, nullptr, 0);
    std::istringstream in(text);
    int count = 0;
    for (pid_t pid; in >> pid; ++count) {
      CAPTURE(pid);
      CHECK(test_support::wait_gone(pid));
    }
    CHECK(count == 2);
  }
}
