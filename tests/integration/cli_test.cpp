// SPDX-License-Identifier: Apache-2.0
// The pagi-exec command-line host: check's exit status, run's output, and the lifeline — when
// the process hosting the library dies, the execution's whole tree dies with it.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "test_support.hpp"

using test_support::TempDir;

namespace {

using test_support::Ran;

// Runs the built pagi-exec with `args` (or, with `via_exec`, args[1..] as a whole command line),
// capturing stdout (stderr stays the test's).
Ran run_cli(const std::vector<std::string>& args, bool via_exec = false) {
  const char* bin = std::getenv("PAGI_EXEC_CLI");
  REQUIRE(bin != nullptr);
  std::vector<std::string> argv;
  if (!via_exec) argv.push_back(bin);
  argv.insert(argv.end(), args.begin() + (via_exec ? 1 : 0), args.end());
  return test_support::run_program(argv);
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
    // A call that cannot run as asked is the caller's mistake, said as such, with the usage status.
    const auto invalid = run_cli({"check", "--twin", "twin-aegis", "--", "file_write"});
    CHECK(invalid.status == 2);
    CHECK(invalid.out.rfind("invalid request: ", 0) == 0);
  }

  TEST_CASE("run prints the command's output and exits with its status") {
    TempDir dir;
    const auto ran = run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", dir.path().string(), "--",
                              "sh", "-c", "echo hi; exit 3"});
    CHECK(ran.status == 3);
    CHECK(ran.out == "hi\n");
  }

  TEST_CASE("run chooses the strongest isolation that works by default and says which") {
    TempDir dir;
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    const auto ran = test_support::run_program(
        {bin, "run", "--twin", "twin-aegis", "--sandbox-dir", dir.path().string(), "--", "true"}, true);
    CAPTURE(ran.out);
    CHECK(ran.status == 0);
    CHECK(ran.out.find("pagi-exec: isolation ") != std::string::npos);
    CHECK(ran.out.find(" (auto: ") != std::string::npos);
    // As root (CI) native works: the default must not settle for a weaker mode.
    if (::geteuid() == 0) {
      CHECK(ran.out.find("pagi-exec: isolation native (auto: native works here)") != std::string::npos);
      CHECK(ran.out.find(", isolation native)") != std::string::npos);
    }
  }

  TEST_CASE("check decides with a policy file and shows what it could not judge") {
    const char* examples = std::getenv("PAGI_EXEC_EXAMPLES");
    REQUIRE(examples != nullptr);
    const std::string file = std::string(examples) + "/policy.toml";
    const auto ran = run_cli({"check", "--twin", "twin-aegis", "--policy", file, "--", "command_exec", "echo $(id); ls"});
    CHECK(ran.status == 0);
    CHECK(ran.out.find("note: unjudgeable: command substitution") != std::string::npos);
    CHECK(run_cli({"check", "--twin", "twin-aegis", "--policy", file, "--", "command_exec", "ls; /bin/rm -rf ~"}).status == 1);
    CHECK(run_cli({"check", "--twin", "twin-aegis", "--policy", "/etc/hostname", "--", "ls"}).status == 2);
  }

  TEST_CASE("run drops to the run uid as the server does: --run-as-uid/gid, 0 only with --run-as-root" *
            test_support::skip_if(::geteuid() != 0, "needs root, to drop to another uid")) {
    TempDir dir;
    const auto sandbox = dir.path().string();
    const auto by_default = run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", sandbox, "--isolation", "cwd", "--", "id", "-u"});
    CHECK(by_default.status == 0);
    CHECK(by_default.out == "65534\n");
    const auto chosen = run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", sandbox, "--isolation", "cwd", "--run-as-uid", "4242",
                                 "--run-as-gid", "4343", "--", "sh", "-c", "id -u; id -g"});
    CHECK(chosen.out == "4242\n4343\n");
    CHECK(run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", sandbox, "--isolation", "cwd", "--run-as-uid", "0", "--", "id", "-u"})
              .status == 2);
    const auto as_root = run_cli({"run", "--twin", "twin-aegis", "--sandbox-dir", sandbox, "--isolation", "cwd", "--run-as-root", "--", "id", "-u"});
    CHECK(as_root.status == 0);
    CHECK(as_root.out == "0\n");
  }

  TEST_CASE("not root: commands run as the host's own uid, and a killed supervisor still gets an answer" *
            test_support::skip_if(::geteuid() != 0, "needs root, to become uid 65534 with setpriv")) {
    // pagi-exec itself runs as 65534 here, so it cannot drop and its command CAN kill its
    // supervisor. The answer must come at once and say whether processes may have survived
    // (without a cgroup, which an unprivileged process rarely has, its process group is killed;
    // a process that left the group with setsid would survive).
    TempDir dir;
    const auto sandbox = dir.path() / "sb";
    std::filesystem::create_directories(sandbox);
    REQUIRE(::chown(sandbox.c_str(), 65534, 65534) == 0);
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    const std::string mark = "1000." + std::to_string(::getpid()) + "09";
    const auto ran = test_support::run_program(
        {"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", bin, "run", "--twin",
         "twin-aegis", "--sandbox-dir", sandbox.string(), "--isolation", "cwd", "--timeout-ms", "3000", "--", "sh", "-c",
         "sleep " + mark + " & kill -9 $PPID; sleep 1"},
        true);
    CAPTURE(ran.out);
    CHECK(ran.status == 2);
    CHECK(ran.out.find("the execution supervisor died") != std::string::npos);
    const bool may_survive = ran.out.find("may survive") != std::string::npos;
    // Clean up what survived (found by its argv), and check the answer told the truth.
    bool survived = false;
    for (const pid_t pid : test_support::pids_with_cmdline(std::string("sleep") + '\0' + mark + '\0')) {
      survived = true;
      ::kill(pid, SIGKILL);
    }
    const std::string fate = survived ? "survived" : "did not survive";
    MESSAGE("not root, no cgroup: the background process " << fate);
    CHECK_FALSE(survived);  // it stayed in the command's process group
    CHECK(may_survive);     // and the answer says what might have escaped
  }

  TEST_CASE("bad usage is exit status 2") {
    CHECK(run_cli({"run", "--twin", "twin-aegis", "--isolation", "vm", "--", "true"}).status == 2);
    CHECK(run_cli({"check"}).status == 2);
  }

  TEST_CASE("killing the host with SIGKILL kills the execution's whole tree") {
    TempDir dir;
    // In the twin's workspace, where the command (running as the sandbox's uid) may write.
    const auto pids = dir.path() / "sb" / "twin-aegis" / "pids";
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    const std::string line = "(setsid sh -c 'echo $$ >> \"$PAGI_WORKSPACE/pids\"; exec sleep 1000' &); "
                             "echo $$ >> \"$PAGI_WORKSPACE/pids\"; sleep 1000";
    const pid_t host = ::fork();
    REQUIRE(host >= 0);
    if (host == 0) {
      const std::string sandbox = (dir.path() / "sb").string();
      ::execl(bin, bin, "run", "--twin", "twin-aegis", "--isolation", "cwd", "--sandbox-dir", sandbox.c_str(),
              "--timeout-ms", "600000", "--", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
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

TEST_SUITE("cli") {
  TEST_CASE("native: SIGKILL of the host ends the sandbox, and the next start removes its cgroups") {
    TempDir dir;
    const auto marker = "1000." + std::to_string(::getpid()) + "7";
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    const std::string sandbox = (dir.path() / "sb").string();
    const pid_t host = ::fork();
    REQUIRE(host >= 0);
    if (host == 0) {
      ::execl(bin, bin, "run", "--twin", "twin-aegis", "--isolation", "native", "--sandbox-dir", sandbox.c_str(),
              "--timeout-ms", "600000", "--", "sleep", marker.c_str(), static_cast<char*>(nullptr));
      ::_exit(99);
    }
    const auto running = [&] {
      return !test_support::pids_with_cmdline("/usr/bin/sleep" + std::string(1, '\0') + marker + '\0').empty();
    };
    for (int i = 0; i < 500 && !running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const bool started = running();
    ::kill(host, SIGKILL);
    ::waitpid(host, nullptr, 0);
    REQUIRE(started);
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {
      gone = !running();
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(gone);  // the init saw its lifeline close and ended the namespace
    const auto stale = "pagi-exec-" + std::to_string(host) + "-";
    const auto leftovers = [&] {
      int found = 0;
      for (const char* mount : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"}) {
        // The non-throwing increment: other tests' cgroups come and go during the walk.
        std::error_code ec;
        for (std::filesystem::recursive_directory_iterator it(mount, ec), end; !ec && it != end; it.increment(ec)) {
          if (it->path().filename().string().rfind(stale, 0) == 0) ++found;
        }
      }
      return found;
    };
    const int before = leftovers();
    CHECK(run_cli({"run", "--twin", "twin-aegis", "--isolation", "native", "--sandbox-dir", sandbox, "--", "true"}).status == 0);
    CHECK(leftovers() == 0);
    MESSAGE("cgroup folders left by the killed host: " << before << ", after the next start: " << leftovers());
  }

  TEST_CASE("native isolation works for an unprivileged user, through a user namespace" *
            test_support::skip_if(::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0,
                                  "needs root (to become uid 65534 with setpriv) and /usr/bin/setpriv")) {
    TempDir dir;
    std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    // setpriv drops to nobody; pagi-exec then has no privilege but user namespaces.
    const auto ran = run_cli({"--", "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", bin,
                              "run", "--twin", "twin-aegis", "--isolation", "native", "--sandbox-dir",
                              (dir.path() / "sb").string(), "--", "sh", "-c",
                              "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '; "
                              "cat /etc/shadow 2>/dev/null || echo no-shadow; ls /proc | grep -c '^[0-9]'"},
                             /*via_exec=*/true);
    CHECK(ran.status == 0);
    const std::string expected = "65534\nCapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\nno-shadow\n";
    REQUIRE(ran.out.rfind(expected, 0) == 0);
    // init, sh, ls and (if already started) grep: the only processes it can see
    const int visible = std::stoi(ran.out.substr(expected.size()));
    CHECK(visible >= 3);
    CHECK(visible <= 4);
  }
}
