// SPDX-License-Identifier: Apache-2.0
// Real processes in cwd mode: output, exit codes, time limits, process trees, inheritance.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>

#include <set>
#include <sstream>
#include <thread>

#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::chrono_literals;
using test_support::shell;
using test_support::TempDir;

TEST_SUITE("spawn") {
  TEST_CASE("stdout and stderr come back as lines, in order") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(shell("echo one; echo two; echo oops >&2; printf 'no newline'"));
    REQUIRE(outcome);
    CHECK(outcome->success());
    CHECK(outcome->exit_code == 0);
    CHECK(outcome->out.lines == std::vector<std::string>{"one", "two", "no newline"});
    CHECK(outcome->err.lines == std::vector<std::string>{"oops"});
    CHECK(outcome->message.starts_with("Execution completed (elapsed_ms="));  // the original's sentence
  }

  TEST_CASE("argv is passed as is, never through a shell") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run({.tool = "echo", .args = {"$HOME", "; ls", "`id`"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->out.lines == std::vector<std::string>{"$HOME ; ls `id`"});
  }

  TEST_CASE("exit codes: status, not found, not executable, signal") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    auto failed = executor.run({.tool = "false", .twin_id = "twin-aegis"});
    REQUIRE(failed);
    CHECK(failed->exit_code == 1);
    CHECK_FALSE(failed->success());
    CHECK(failed->ran);

    auto missing = executor.run({.tool = "definitely-not-a-program", .twin_id = "twin-aegis"});
    REQUIRE(missing);
    CHECK(missing->exit_code == 127);

    auto missing_path = executor.run({.tool = "/nonexistent/prog", .twin_id = "twin-aegis"});
    REQUIRE(missing_path);
    CHECK(missing_path->exit_code == 127);

    REQUIRE(executor.run({.tool = "file_write", .args = {"script.sh", "#!/bin/sh\necho hi\n"}, .twin_id = "twin-aegis"}));
    auto not_exec = executor.run({.tool = "../script.sh", .twin_id = "twin-aegis"});
    REQUIRE(not_exec);
    CHECK(not_exec->exit_code == 126);
    CHECK(not_exec->message.find("Permission denied") != std::string::npos);

    auto killed = executor.run(shell("kill -SEGV $$"));
    REQUIRE(killed);
    CHECK(killed->exit_code == 128 + SIGSEGV);
    CHECK(killed->signal == SIGSEGV);

    auto shell_missing = executor.run(shell("no-such-command-here"));
    REQUIRE(shell_missing);
    CHECK(shell_missing->exit_code == 127);
  }

  TEST_CASE("the time limit ends the command with 124 and execution_timeout") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 300ms);
    const auto outcome = executor.run({.tool = "sleep", .args = {"30"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->timed_out);
    CHECK(outcome->exit_code == 124);
    CHECK(outcome->message == "execution_timeout");
    CHECK_FALSE(outcome->success());
  }

  TEST_CASE("no process of the tree outlives the time limit: double fork, setsid, ignored signals, stopped") {
    TempDir dir;
    // In the twin's workspace, where the command (the sandbox's uid) may write.
    const auto pids = dir.path() / "twin-aegis" / "pids";
    const std::string in_workspace = "\"$PAGI_WORKSPACE/pids\"";
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 500ms);
    const auto line =
        "( setsid sh -c 'trap \"\" TERM HUP INT; echo $$ >> " + in_workspace + "; exec sleep 1000' & ) ; "
        "( sh -c 'echo $$ >> " + in_workspace + "; kill -STOP $$' & ) ; "
        "sh -c 'trap \"\" TERM; echo $$ >> " + in_workspace + "; sleep 1000' & "
        "sleep 1000";
    const auto outcome = executor.run(shell(line));
    REQUIRE(outcome);
    CHECK(outcome->timed_out);
    const auto text = test_support::read_file(pids);
    std::istringstream in(text);
    int count = 0;
    for (pid_t pid; in >> pid; ++count) {
      CAPTURE(pid);
      CHECK_FALSE(test_support::process_alive(pid));  // gone already when run() returns
    }
    CHECK(count == 3);
  }

  TEST_CASE("a daemon left behind by a command that exits normally is killed too") {
    TempDir dir;
    const auto pidfile = dir.path() / "twin-aegis" / "daemon.pid";
    const std::string in_workspace = "\"$PAGI_WORKSPACE/daemon.pid\"";
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(
        shell("( setsid sh -c 'echo $$ > " + in_workspace + "; exec sleep 1000' > /dev/null 2>&1 & ); "
              "while [ ! -s " + in_workspace + " ]; do sleep 0.01; done; echo started"));
    REQUIRE(outcome);
    CHECK(outcome->success());
    CHECK(outcome->out.lines == std::vector<std::string>{"started"});
    const auto pid = std::stoi(test_support::read_file(pidfile));
    CHECK_FALSE(test_support::process_alive(pid));
  }

  TEST_CASE("a stop request kills the tree at once") {
    TempDir dir;
    const auto pidfile = dir.path() / "twin-aegis" / "pid";
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 60s);
    std::stop_source stop;
    std::thread canceller([&] {
      for (int i = 0; i < 500 && test_support::read_file(pidfile).empty(); ++i) std::this_thread::sleep_for(10ms);
      stop.request_stop();
    });
    const auto outcome = executor.run(shell("echo $$ > \"$PAGI_WORKSPACE/pid\"; sleep 1000"), stop.get_token());
    canceller.join();
    REQUIRE(outcome);
    CHECK(outcome->cancelled);
    CHECK_FALSE(outcome->timed_out);
    CHECK_FALSE(outcome->success());
    CHECK(outcome->message.rfind("execution_cancelled", 0) == 0);
    CHECK_FALSE(test_support::process_alive(std::stoi(test_support::read_file(pidfile))));
  }

  TEST_CASE("an output flood is drained past the caps with bounded memory") {
    TempDir dir;
    // 512 MiB on stdout (one endless line) and 64 MiB of short lines on stderr, captured in a child.
    const auto ran = test_support::peak_in_child([&] {
      const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 60s, {.max_bytes = 32 * 1024, .max_lines = 200});
      const auto outcome = executor.run(shell("head -c 536870912 /dev/zero | tr '\\0' x; yes | head -c 67108864 >&2"));
      if (!outcome) return "error: " + outcome.error().message();
      std::ostringstream said;
      said << "success=" << outcome->success() << " out.truncated=" << outcome->out.truncated
           << " out.total_bytes=" << outcome->out.total_bytes << " out.lines=" << outcome->out.lines.size()
           << " out.line0=" << (outcome->out.lines.empty() ? 0 : outcome->out.lines[0].size())
           << " err.truncated=" << outcome->err.truncated << " err.lines=" << outcome->err.lines.size()
           << " says_truncated=" << (outcome->message.find("stdout truncated") != std::string::npos);
      executor.wait_for_cleanup();
      return said.str();
    });
    CHECK(ran.said ==
          "success=1 out.truncated=1 out.total_bytes=536870912 out.lines=1 out.line0=32768 err.truncated=1 "
          "err.lines=200 says_truncated=1");
    // The child's peak RSS grew by far less than the output (576 MiB): caps + buffers only.
    REQUIRE(ran.grown_kib >= 0);
    CHECK(ran.grown_kib < 16 * 1024);
  }

  TEST_CASE("the command inherits no descriptor of the server, and stdin is /dev/null") {
    TempDir dir;
    const int leaked = ::open("/etc/hostname", O_RDONLY);  // deliberately without O_CLOEXEC
    REQUIRE(leaked >= 0);
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(shell("ls /proc/self/fd; readlink /proc/self/fd/0; cat"));
    ::close(leaked);
    REQUIRE(outcome);
    // ls itself opens one descriptor (3) for the directory it lists; nothing else above 2.
    CHECK(outcome->out.lines == std::vector<std::string>{"0", "1", "2", "3", "/dev/null"});
  }

  TEST_CASE("the command sees none of the server's environment") {
    TempDir dir;
    ::setenv("PAGI_EXEC_SERVER_SECRET", "s3cr3t", 1);
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run({.tool = "env", .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    std::string all;
    for (const auto& l : outcome->out.lines) all += l + "\n";
    CHECK(all.find("s3cr3t") == std::string::npos);
    CHECK(all.find("PATH=/usr/local/bin:/usr/bin:/bin") != std::string::npos);
    CHECK(all.find("PAGI_TWIN_ID=twin-aegis") != std::string::npos);
    CHECK(outcome->out.lines.size() <= 10);
  }

  TEST_CASE("the command runs in its own session, not the server's") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(shell("cut -d' ' -f6 /proc/self/stat; echo $$"));
    REQUIRE(outcome);
    REQUIRE(outcome->out.lines.size() == 2);
    CHECK(std::stoi(outcome->out.lines[0]) != ::getsid(0));
  }

  TEST_CASE("signals the server blocks or ignores are not blocked or ignored in the command") {
    TempDir dir;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(shell("grep -E '^Sig(Blk|Ign)' /proc/self/status"));
    pthread_sigmask(SIG_UNBLOCK, &block, nullptr);
    REQUIRE(outcome);
    CHECK(outcome->out.lines == std::vector<std::string>{"SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"});
  }

  TEST_CASE("runs in parallel: a sleeping command does not delay another") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    REQUIRE(executor.run(shell("mkfifo \"$PAGI_WORKSPACE/release\""))->success());
    const auto started = dir.path() / "twin-aegis" / "started";
    std::atomic<bool> sleeper_done{false};
    std::thread sleeper([&] {
      // Waits for the test's release, however long the machine takes.
      (void)executor.run(shell("touch \"$PAGI_WORKSPACE/started\"; until read a < \"$PAGI_WORKSPACE/release\"; do :; done"));
      sleeper_done = true;
    });
    for (int i = 0; i < 1000 && !std::filesystem::exists(started); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(std::filesystem::exists(started));
    const auto quick = executor.run({.tool = "echo", .args = {"quick"}, .twin_id = "twin-aegis"});
    CHECK_FALSE(sleeper_done.load());  // the echo finished while the other command was still running
    CHECK(test_support::release(dir.path() / "twin-aegis" / "release"));
    sleeper.join();
    CHECK(sleeper_done.load());
    REQUIRE(quick);
    CHECK(quick->out.lines == std::vector<std::string>{"quick"});
  }

  TEST_CASE("resource usage is reported") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto outcome = executor.run(shell("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"));
    REQUIRE(outcome);
    CHECK(outcome->usage.cpu_user + outcome->usage.cpu_system > 0us);
    CHECK(outcome->usage.max_rss_bytes > 0);
    CHECK(outcome->elapsed > 0us);
  }
}

TEST_SUITE("streaming") {
  TEST_CASE("output reaches the sink as it is produced, in order per stream, and is still captured") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    REQUIRE(executor.run(shell("mkfifo \"$PAGI_WORKSPACE/ack\""))->success());
    const auto ack = dir.path() / "twin-aegis" / "ack";
    std::string out, err, order;
    Outcome started_seen;
    const RunHooks hooks{
        .started = [&](const Outcome& o) { started_seen = o; },
        .output =
            [&](OutputStream stream, std::string_view chunk) {
              (stream == OutputStream::out ? out : err).append(chunk);
              order.push_back(stream == OutputStream::out ? 'o' : 'e');
              if (chunk.ends_with('\n')) CHECK(test_support::release(ack));  // the command writes the next line
              return true;
            },
    };
    // Each line waits until the sink has had the one before: the chunks arrive separately, in order.
    const auto outcome = executor.run(
        // `until read`: a read that met the end of the previous release's write (its writer not
        // yet closed) got no line, and waits for the next.
        shell("w() { until read a < \"$PAGI_WORKSPACE/ack\"; do :; done; }; "
              "for i in 1 2 3; do echo out$i; w; echo err$i >&2; w; done"),
        {}, hooks);
    REQUIRE(outcome);
    CHECK(started_seen.execution_id == outcome->execution_id);
    CHECK(out == "out1\nout2\nout3\n");
    CHECK(err == "err1\nerr2\nerr3\n");
    CHECK(order == "oeoeoe");
    CHECK(outcome->out.lines == std::vector<std::string>{"out1", "out2", "out3"});
  }

  TEST_CASE("a slow sink slows the command instead of growing memory") {
    TempDir dir;
    const auto ran = test_support::peak_in_child([&] {
      const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 60s);
      std::uint64_t received = 0;
      int calls = 0;
      const auto outcome = executor.run(shell("head -c 268435456 /dev/zero"), {},
                                        {.output = [&](OutputStream, std::string_view chunk) {
                                          received += chunk.size();
                                          if (++calls % 64 == 0) std::this_thread::sleep_for(1ms);  // a slow reader
                                          return true;
                                        }});
      executor.wait_for_cleanup();
      return outcome ? "received=" + std::to_string(received) : "error: " + outcome.error().message();
    });
    CHECK(ran.said == "received=268435456");
    REQUIRE(ran.grown_kib >= 0);
    CHECK(ran.grown_kib < 16 * 1024);  // KiB, the child's peak: 256 MiB went through, not into memory
  }

  TEST_CASE("a sink that returns false stops the execution and kills its tree") {
    TempDir dir;
    const auto pidfile = dir.path() / "twin-aegis" / "pid";
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 60s);
    const auto outcome = executor.run(
        shell("echo $$ > \"$PAGI_WORKSPACE/pid\"; while :; do echo tick; sleep 0.01; done"), {},
        {.output = [&](OutputStream, std::string_view) { return false; }});
    REQUIRE(outcome);
    CHECK(outcome->cancelled);
    CHECK_FALSE(test_support::process_alive(std::stoi(test_support::read_file(pidfile))));
  }

  TEST_CASE("when the last owner of a spawner goes, its clean-up is done: no supervisor is left unreaped") {
    // Children of this process, alive or zombie, as /proc lists them for each of its threads.
    const auto children = [] {
      std::set<std::string> pids;
      for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::istringstream list(test_support::read_file(task.path() / "children"));
        for (std::string pid; list >> pid;) pids.insert(pid);
      }
      return pids;
    };
    const auto before = children();
    TempDir dir;
    {
      const auto executor = test_support::make_executor(dir.path());  // its own spawner
      for (int i = 0; i < 3; ++i) REQUIRE(executor.run(shell("true")));
    }
    for (const auto& pid : children()) CHECK(before.count(pid) == 1);
  }
}
