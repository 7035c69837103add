// SPDX-License-Identifier: Apache-2.0
// The native sandbox's limits: each ends the run and the outcome names it; usage is reported.
#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::chrono_literals;
using test_support::shell;
using test_support::TempDir;

namespace {

Executor native_executor(const std::filesystem::path& root, Limits limits) {
  auto sandbox = Sandbox::make({.root_dir = root, .isolation = Isolation::native, .limits = limits});
  REQUIRE(sandbox);
  auto executor = Executor::open({.sandbox = *sandbox});
  REQUIRE_MESSAGE(executor, "native sandbox unavailable: " << executor.error().message());
  return *executor;
}

Limits small_limits() {
  return Limits{.timeout = 20s, .memory_bytes = 64ULL << 20, .max_processes = 32, .cpu_time = 2s,
                .file_size_bytes = 8ULL << 20, .open_files = 64, .tmpfs_bytes = 16ULL << 20};
}

}  // namespace

TEST_SUITE("limits") {
  TEST_CASE("a memory bomb is killed and reported as memory_limit_exceeded") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    const auto outcome = executor.run(shell("/usr/bin/python3 -c 'b = bytearray(512 << 20); print(len(b))'"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->limit_hit == LimitHit::memory);
    CHECK_FALSE(outcome->success());
    CHECK(outcome->message.find("; memory_limit_exceeded") != std::string::npos);  // after the original's sentence
    CHECK(outcome->usage.peak_memory_bytes > 0);
    CHECK(outcome->usage.peak_memory_bytes <= (64ULL << 20) + (1ULL << 20));
  }

  TEST_CASE("memory held in unix socket buffers counts against the memory limit too") {
    // Kernel memory no process maps: 512 MiB parked in the send buffers of socket pairs must meet
    // the cgroup's 64 MiB like a bytearray does, or one run could take the host's memory.
    TempDir dir;
    auto limits = small_limits();
    limits.open_files = 1024;  // room for 480 pairs: 512 MiB even where net.core.wmem_max is its 208 KiB default
    const auto executor = native_executor(dir.path(), limits);
    const auto outcome = executor.run(shell(
        "/usr/bin/python3 -c '\n"
        "import socket\n"
        "held, total = [], 0\n"
        "while total < 512 << 20 and len(held) < 480:\n"
        "    pair = socket.socketpair()\n"
        "    for s in pair:\n"
        "        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)\n"
        "        s.setblocking(False)\n"
        "        try:\n"
        "            while True: total += s.send(bytes(65536))\n"
        "        except BlockingIOError: pass\n"
        "    held.append(pair)\n"
        "print(total >> 20, \"MiB held\")'"));
    // The cgroup's OOM killer ends the run either way. It picks its victim by resident memory,
    // which socket buffers are not: the command, or, in a sanitized build where the native init
    // cloned from the test process is the larger, the init, which ends the run as an error.
    if (!outcome) {
      INFO("error: ", outcome.error().message());
      CHECK(outcome.error().message().find("init died before the command ended (wait status 9)") != std::string::npos);
      return;
    }
    INFO("message: ", outcome->message, "; stdout: ", outcome->out.lines.empty() ? "" : outcome->out.lines.front());
    CHECK(outcome->limit_hit == LimitHit::memory);
    CHECK(outcome->out.lines.empty());  // never got to hold it
  }

  TEST_CASE("a fork bomb hits the process limit and is reported as pids_limit") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    auto limits = small_limits();
    limits.memory_bytes = 512ULL << 20;  // so the process limit, not memory, stops it
    const auto bomb_executor = native_executor(dir.path(), limits);
    const auto outcome = bomb_executor.run(shell("bomb() { bomb | bomb & }; bomb; sleep 2"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->limit_hit == LimitHit::pids);
  }

  TEST_CASE("a CPU hog is stopped by the CPU limit before the wall clock") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    const auto outcome = executor.run(shell("while :; do :; done"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->limit_hit == LimitHit::cpu);
    CHECK_FALSE(outcome->timed_out);
    CHECK(outcome->usage.cpu_user + outcome->usage.cpu_system >= 1s);
  }

  TEST_CASE("a file larger than the file size limit is cut with file_size_limit") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    const auto direct = executor.run(
        {.tool = "dd", .args = {"if=/dev/zero", "of=/tmp/big", "bs=1M", "count=9"}, .twin_id = "twin-aegis"});
    REQUIRE(direct);
    CHECK(direct->limit_hit == LimitHit::file_size);
    CHECK(direct->signal == SIGXFSZ);
    const auto outcome = executor.run(shell("head -c 9000000 /dev/zero > /tmp/big"));  // the shell reports 153
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->limit_hit == LimitHit::file_size);
    CHECK(outcome->exit_code == 128 + SIGXFSZ);
  }

  TEST_CASE("filling the working folder stops at its size cap") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    const auto outcome = executor.run(shell("for i in 1 2 3 4; do head -c 6000000 /dev/zero > f$i || exit 9; done"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->exit_code == 9);  // ENOSPC after 16 MiB
    const bool no_space = !outcome->err.lines.empty() &&
                          outcome->err.lines.front().find("No space left on device") != std::string::npos;
    CHECK(no_space);
  }

  TEST_CASE("the time limit ends processes that ignore signals or stop themselves") {
    TempDir dir;
    auto limits = small_limits();
    limits.timeout = 800ms;
    const auto executor = native_executor(dir.path(), limits);
    const auto outcome = executor.run(shell("trap '' TERM INT HUP; (kill -STOP $$ &); sleep 1; sleep 1000"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->timed_out);
    CHECK(outcome->limit_hit == LimitHit::timeout);
    CHECK(outcome->exit_code == 124);
    CHECK(outcome->message == "execution_timeout");
  }

  TEST_CASE("inside: unprivileged uid, no capabilities, no_new_privs, seccomp, fds 0-2, only lo") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    const auto outcome = executor.run(shell(
        "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '; "
        "ls /proc/self/fd | tr '\\n' ' '; echo; ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    REQUIRE(outcome->out.lines.size() == 8);
    // As root, a uid of the pool (uid = gid); otherwise the user namespace's 65534.
    const auto ids = default_native_ids;
    const std::string uid = outcome->out.lines[0];
    if (::geteuid() == 0) {
      CHECK(std::stoull(uid) > ids.first);
      CHECK(std::stoull(uid) < std::uint64_t{ids.first} + ids.count);
    } else {
      CHECK(uid == "65534");
    }
    CHECK(outcome->out.lines[1] == uid);
    CHECK(std::vector<std::string>(outcome->out.lines.begin() + 2, outcome->out.lines.end()) ==
          std::vector<std::string>{"CapEff: 0000000000000000", "CapBnd: 0000000000000000", "NoNewPrivs: 1",
                                   "Seccomp: 2", "0 1 2 3 ", "lo"});
  }

  TEST_CASE("the workspace is readable, the root and system folders are read-only, /work and /tmp writable") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    REQUIRE(executor.run({.tool = "file_write", .args = {"notes.txt", "kept\n"}, .twin_id = "twin-aegis"}));
    const auto outcome = executor.run(shell(
        "cat $PAGI_WORKSPACE/notes.txt; pwd; touch /work/a && echo work-ok; touch /tmp/a && echo tmp-ok; "
        "touch /usr/x 2>/dev/null || echo usr-ro; touch /x 2>/dev/null || echo root-ro; "
        "touch $PAGI_WORKSPACE/x 2>/dev/null || echo workspace-ro"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->out.lines ==
          std::vector<std::string>{"kept", "/work", "work-ok", "tmp-ok", "usr-ro", "root-ro", "workspace-ro"});
  }

  TEST_CASE("executions do not share /work or /tmp") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    REQUIRE(executor.run(shell("echo secret > /work/f; echo secret > /tmp/f")));
    const auto outcome = executor.run(shell("ls /work /tmp"));
    REQUIRE(outcome);
    INFO("message: ", outcome->message, "; stderr: ", outcome->err.lines.empty() ? "" : outcome->err.lines.front(), "; stdout lines: ", outcome->out.lines.size());
    CHECK(outcome->out.lines == std::vector<std::string>{"/tmp:", "", "/work:"});
  }

  TEST_CASE("exit codes keep their meaning: not found, signal, status") {
    TempDir dir;
    const auto executor = native_executor(dir.path(), small_limits());
    auto killed = executor.run(shell("kill -SEGV $$"));
    REQUIRE(killed);
    CHECK(killed->exit_code == 128 + SIGSEGV);
    auto missing = executor.run({.tool = "./nope", .twin_id = "twin-aegis"});
    REQUIRE(missing);
    CHECK(missing->exit_code == 127);
    auto status = executor.run(shell("exit 7"));
    REQUIRE(status);
    CHECK(status->exit_code == 7);
    CHECK(status->limit_hit == LimitHit::none);
  }
}
