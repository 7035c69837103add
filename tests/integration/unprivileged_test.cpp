// SPDX-License-Identifier: Apache-2.0
// Commands never act as host root (issue 8, items 1, 2 and 9 for bwrap): each case tries the
// attack from the issue through a real Executor and asserts that it failed. The server here is
// root, as in production; cases that need root or bwrap say so when they skip.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stop_token>
#include <thread>

#include "denied_calls.hpp"
#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::chrono_literals;
using test_support::TempDir;

namespace {

const bool not_root = ::geteuid() != 0;
const char* const bwrap_env = std::getenv("PAGI_EXEC_BWRAP");
const bool no_bwrap = bwrap_env == nullptr || *bwrap_env == '\0';

Executor make(const std::filesystem::path& root, Isolation isolation, std::chrono::milliseconds timeout = 60s,
              bool run_as_root = false) {
  auto sandbox = Sandbox::make({.root_dir = root, .isolation = isolation, .limits = {.timeout = timeout},
                                .bwrap_path = no_bwrap ? "/usr/bin/bwrap" : bwrap_env, .run_as_root = run_as_root});
  REQUIRE(sandbox);
  if (isolation != Isolation::cwd) {
    const auto works = check_isolation(*sandbox);
    REQUIRE_MESSAGE(works, (works ? "" : works.error().message()));
  }
  auto executor = Executor::open({.policy = Policy::seed_default(), .sandbox = *sandbox});
  REQUIRE_MESSAGE(executor, (executor ? "" : executor.error().message()));
  return *executor;
}

std::vector<Isolation> modes_here() {
  std::vector<Isolation> modes{Isolation::cwd};
  if (!no_bwrap) modes.push_back(Isolation::bwrap);
  return modes;
}

Result<Outcome> sh(const Executor& e, const std::string& line, std::chrono::milliseconds cap = 60s) {
  auto request = test_support::shell(line);
  request.timeout_cap = cap;
  return e.run(request);
}

// A sleep duration no other process uses, to find a command's process from the host by argv.
std::string marker(int n) { return "1000." + std::to_string(::getpid()) + "0" + std::to_string(n); }

// Host pids whose argv is exactly `sleep <marker>` and that are alive (zombies run nothing).
std::vector<pid_t> sleepers(const std::string& mark) {
  return test_support::pids_with_cmdline(std::string("sleep") + '\0' + mark + '\0');
}

// What the host sees of a running command: its /proc/<pid>/status Uid and Gid lines and its
// uid_map, read from the host's namespaces (so ids are host ids).
struct HostView {
  std::string uid_line, gid_line, uid_map;
};

HostView host_view(const Executor& e) {
  const auto mark = marker(99);
  std::stop_source stop;
  std::thread run([&] { (void)e.run(test_support::shell("exec sleep " + mark), stop.get_token()); });
  HostView view;
  for (int round = 0; round < 3000 && view.uid_line.empty(); ++round) {  // until the run is up (bounded)
    for (const pid_t pid : sleepers(mark)) {
      const auto dir = std::filesystem::path("/proc") / std::to_string(pid);
      std::istringstream status(test_support::read_file(dir / "status"));
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("Uid:", 0) == 0) view.uid_line = line;
        if (line.rfind("Gid:", 0) == 0) view.gid_line = line;
      }
      view.uid_map = test_support::read_file(dir / "uid_map");
    }
    if (view.uid_line.empty()) std::this_thread::sleep_for(10ms);
  }
  stop.request_stop();
  run.join();
  return view;
}

// Every file beneath `root` that is setuid and owned by root.
std::vector<std::string> setuid_root_files(const std::filesystem::path& root) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec); it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_ISUID) != 0 && st.st_uid == 0) {
      found.push_back(it->path().string());
    }
  }
  return found;
}

bool has_line(const CapturedStream& stream, const std::string& text) {
  return std::find(stream.lines.begin(), stream.lines.end(), text) != stream.lines.end();
}

}  // namespace

TEST_SUITE("unprivileged") {
  TEST_CASE("issue 8.1: in bwrap the command is not host root and /proc/sys is read-only" *
            test_support::skip_if(not_root || no_bwrap, "needs root and bubblewrap")) {
    TempDir dir;
    const auto e = make(dir.path() / "sb", Isolation::bwrap);
    auto o = sh(e, "cat /proc/self/uid_map; cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && "
                   "echo WRITABLE; echo x > /proc/sysrq-trigger && echo SYSRQ");
    REQUIRE(o);
    CAPTURE(o->err.lines);
    CHECK_FALSE(has_line(o->out, "WRITABLE"));
    CHECK_FALSE(has_line(o->out, "SYSRQ"));
    // The uid_map seen inside relates to bwrap's own intermediate namespace; from the host the
    // command's uid maps to 65534 and never to 0.
    const auto view = host_view(e);
    CAPTURE(view.uid_map);
    CHECK(view.uid_line == "Uid:\t65534\t65534\t65534\t65534");
    CHECK(view.gid_line == "Gid:\t65534\t65534\t65534\t65534");
    std::istringstream map(view.uid_map);
    long inside = -1, outside = -1, count = 0;
    const bool parsed = static_cast<bool>(map >> inside >> outside >> count);
    REQUIRE(parsed);
    CHECK(outside == 65534);
    CHECK(count == 1);
  }

  TEST_CASE("issue 8.2: cwd and bwrap commands run as 65534 with no groups and no_new_privs" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    for (const auto mode : modes_here()) {
      CAPTURE(to_string(mode));
      TempDir dir;
      const auto e = make(dir.path() / "sb", mode);
      auto o = sh(e, "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status");
      REQUIRE(o);
      CHECK(o->out.lines == std::vector<std::string>{"65534", "65534", "65534", "NoNewPrivs:\t1"});
      CHECK(host_view(e).uid_line == "Uid:\t65534\t65534\t65534\t65534");
    }
  }

  TEST_CASE("an unprivileged command can still write to /dev/stdout and /dev/stderr, in every mode" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    auto modes = modes_here();
    modes.push_back(Isolation::native);
    for (const auto mode : modes) {
      CAPTURE(to_string(mode));
      TempDir dir;
      const auto e = make(dir.path() / "sb", mode);
      auto o = sh(e, "echo out > /dev/stdout; echo err > /dev/stderr");
      REQUIRE(o);
      CHECK(o->out.lines == std::vector<std::string>{"out"});
      CHECK(o->err.lines == std::vector<std::string>{"err"});
    }
  }

  TEST_CASE("issue 8.2: TOOLS_RUN_AS_UID/GID choose the uid; 0 needs run_as_root" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    TempDir dir;
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "sb", .sandbox_uid = 4242, .sandbox_gid = 4343});
    REQUIRE(sandbox);
    auto e = Executor::open({.policy = Policy::seed_default(), .sandbox = *sandbox});
    REQUIRE(e);
    auto o = e->run(test_support::shell("id -u; id -g"));
    REQUIRE(o);
    CHECK(o->out.lines == std::vector<std::string>{"4242", "4343"});
    CHECK_FALSE(Sandbox::make({.root_dir = "/tmp/x", .sandbox_uid = 0}));
    CHECK_FALSE(Sandbox::make({.root_dir = "/tmp/x", .sandbox_gid = 0}));
    CHECK(Sandbox::make({.root_dir = "/tmp/x", .sandbox_uid = 0, .sandbox_gid = 0, .run_as_root = true}));
  }

  TEST_CASE("issue 8.2: no setuid-root file can be planted in the sandbox dir, in any mode" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    auto modes = modes_here();
    modes.push_back(Isolation::native);
    for (const auto mode : modes) {
      CAPTURE(to_string(mode));
      TempDir dir;
      const auto root = dir.path() / "sb";
      const auto e = make(root, mode);
      auto o = sh(e, "cp /bin/sh \"$PAGI_WORKSPACE/s\"; chmod 4755 \"$PAGI_WORKSPACE/s\"; "
                     "cp /bin/sh ./s2 && chmod 4755 ./s2 && ls -ln ./s2");
      REQUIRE(o);
      e.wait_for_cleanup();
      CHECK(setuid_root_files(root).empty());
      if (mode == Isolation::cwd) {
        // The attempt itself worked: the copy exists, setuid, but owned by the sandbox's uid.
        struct stat st{};
        REQUIRE(::stat((root / "twin-aegis" / "s").c_str(), &st) == 0);
        CHECK((st.st_mode & S_ISUID) != 0);
        CHECK(st.st_uid == 65534);
      }
    }
  }

  TEST_CASE("issue 8.2: kill -9 $PPID fails, the call answers and nothing of the run survives" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    for (const auto mode : modes_here()) {
      CAPTURE(to_string(mode));
      TempDir dir;
      const auto e = make(dir.path() / "sb", mode);
      const auto mark = marker(static_cast<int>(mode));
      auto o = sh(e, "sleep " + mark + " & kill -9 $PPID; echo kill=$?; sleep 1", 3000ms);
      REQUIRE(o);  // the supervisor reported: it survived
      CAPTURE(o->err.lines);
      CHECK_FALSE(o->timed_out);
      CHECK(o->exit_code == 0);
      if (mode == Isolation::cwd) CHECK(has_line(o->out, "kill=1"));  // EPERM; in bwrap $PPID is its own init
      CHECK(sleepers(mark).empty());
    }
  }

  TEST_CASE("with run_as_root a command that kills its supervisor still leaves nothing behind" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    // Here the command CAN kill its supervisor (both are root): the parent notices the report
    // pipe closing without a report and kills the run's cgroup.
    TempDir dir;
    const auto e = make(dir.path() / "sb", Isolation::cwd, 60s, true);
    const auto mark = marker(7);
    auto o = sh(e, "sleep " + mark + " & kill -9 $PPID; sleep 1", 3000ms);
    if (o) CHECK(o->exit_code != 0);
    if (!o) CHECK(o.error().message().find("supervisor died") != std::string::npos);
    CHECK(sleepers(mark).empty());
  }

  TEST_CASE("with run_as_root a command that stops its supervisor is still ended at the time limit" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    // A stopped supervisor enforces nothing: the parent's backstop (limit + grace) kills the
    // supervisor and the run's cgroup from outside.
    TempDir dir;
    const auto e = make(dir.path() / "sb", Isolation::cwd, 60s, true);
    const auto mark = marker(8);
    auto o = sh(e, "kill -STOP $PPID; sleep " + mark, 1000ms);
    REQUIRE(o);
    CHECK(o->timed_out);
    CHECK(o->exit_code == exit_timeout);
    CHECK(sleepers(mark).empty());
  }

  TEST_CASE("issue 8.9: in bwrap /tmp and the working folder are capped tmpfs, the workspace is read-only" *
            test_support::skip_if(not_root || no_bwrap, "needs root and bubblewrap")) {
    TempDir dir;
    const auto e = make(dir.path() / "sb", Isolation::bwrap);
    auto o = sh(e, "head -c 1073741824 /dev/zero > /tmp/big; wc -c < /tmp/big; "
                   "head -c 1073741824 /dev/zero > big; wc -c < big; pwd; "
                   "echo x > /workspace/pwned || echo read-only");
    REQUIRE(o);
    CAPTURE(o->err.lines);
    REQUIRE(o->out.lines.size() == 4);
    const auto cap = std::to_string(Limits{}.tmpfs_bytes);
    CHECK(o->out.lines[0] == cap);
    CHECK(o->out.lines[1] == cap);
    CHECK(o->out.lines[2] == "/work");
    CHECK(o->out.lines[3] == "read-only");
    CHECK_FALSE(std::filesystem::exists(dir.path() / "sb" / "twin-aegis" / "pwned"));
  }

  TEST_CASE("outside /tmp, /work and a capped /dev/shm nothing is writable in bwrap and native" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    // bwrap builds its root, /dev and /dev/shm as the run's own uid: without a read-only root and
    // a capped /dev/shm, `head -c 2G /dev/zero > /big` would fill RAM outside every cap.
    std::vector<Isolation> modes{Isolation::native};
    if (!no_bwrap) modes.push_back(Isolation::bwrap);
    for (const auto mode : modes) {
      const std::string mode_name(to_string(mode));
      CAPTURE(mode_name);
      TempDir dir;
      const auto e = make(dir.path() / "sb", mode);
      auto o = sh(e, "for d in / /etc /dev /usr /proc; do "
                     "  if (echo x > $d/pwned) 2>/dev/null || mkdir $d/pwned.d 2>/dev/null; then echo wrote $d; "
                     "  else echo refused $d; fi; "
                     "done; "
                     "if [ -d /dev/shm ]; then head -c 1073741824 /dev/zero > /dev/shm/big; wc -c < /dev/shm/big; "
                     "else echo no /dev/shm; fi; "
                     "echo x > /dev/null && echo devices work");
      REQUIRE(o);
      CAPTURE(o->err.lines);
      REQUIRE(o->out.lines.size() == 7);
      for (std::size_t i = 0; i < 5; ++i) CHECK_MESSAGE(o->out.lines[i].starts_with("refused "), o->out.lines[i]);
      const auto cap = std::to_string(Limits{}.tmpfs_bytes);
      CHECK_MESSAGE((o->out.lines[5] == cap || o->out.lines[5] == "no /dev/shm"), o->out.lines[5]);
      CHECK(o->out.lines[6] == "devices work");
    }
  }

  TEST_CASE("issue 8.1: the syscalls the native filter refuses fail with EPERM in bwrap and native" *
            test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    const char* probe = std::getenv("PAGI_EXEC_SYSCALL_PROBE");
    REQUIRE(probe != nullptr);
    std::vector<Isolation> modes{Isolation::native};
    if (!no_bwrap) modes.push_back(Isolation::bwrap);
    for (const auto mode : modes) {
      CAPTURE(to_string(mode));
      TempDir dir;
      const auto e = make(dir.path() / "sb", mode);
      const auto workspace = dir.path() / "sb" / "twin-aegis";
      std::filesystem::create_directories(workspace);
      std::filesystem::copy_file(probe, workspace / "probe");
      auto o = sh(e, "\"$PAGI_WORKSPACE/probe\"");
      REQUIRE(o);
      CAPTURE(o->err.lines);
      std::size_t calls = 0;
      for (const auto& line : o->out.lines) {
        CAPTURE(line);
        const auto space = line.rfind(' ');
        REQUIRE(space != std::string::npos);
        CHECK(line.substr(space + 1) == std::to_string(EPERM));
        ++calls;
      }
      CHECK(calls == std::size(test_support::kAlwaysDenied) + 5);
    }
  }

  TEST_CASE("a file written by file_write stays usable by the twin's later cwd commands" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    TempDir dir;
    const auto e = make(dir.path() / "sb", Isolation::cwd);
    REQUIRE(e.run({.tool = "file_write", .args = {"notes/a.txt", "one\n"}, .twin_id = "twin-aegis"}));
    auto o = sh(e, "echo two >> \"$PAGI_WORKSPACE/notes/a.txt\" && mv \"$PAGI_WORKSPACE/notes/a.txt\" "
                   "\"$PAGI_WORKSPACE/notes/b.txt\" && mkdir \"$PAGI_WORKSPACE/notes/sub\" && cat \"$PAGI_WORKSPACE/notes/b.txt\"");
    REQUIRE(o);
    CAPTURE(o->err.lines);
    CHECK(o->out.lines == std::vector<std::string>{"one", "two"});
  }

  TEST_CASE("file_write never writes through a file hard-linked from outside the workspace" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    TempDir dir;
    // A file outside the workspace that the sandbox's uid owns, so the kernel lets it link it.
    const auto outside = dir.path() / "outside.txt";
    std::ofstream(outside) << "keep";
    REQUIRE(::chown(outside.c_str(), 65534, 65534) == 0);
    const auto e = make(dir.path() / "sb", Isolation::cwd);
    REQUIRE(sh(e, "ln " + outside.string() + " \"$PAGI_WORKSPACE/linked\""));
    REQUIRE(std::filesystem::exists(dir.path() / "sb" / "twin-aegis" / "linked"));
    // The new content goes to a fresh file renamed over the link: the workspace's name now holds
    // it, and the file outside keeps its own.
    const auto written = e.run({.tool = "file_write", .args = {"linked", "pwned"}, .twin_id = "twin-aegis"});
    REQUIRE(written);
    CHECK(written->success());
    CHECK(test_support::read_file(dir.path() / "sb" / "twin-aegis" / "linked") == "pwned");
    CHECK(test_support::read_file(outside) == "keep");
  }

  TEST_CASE("the sandbox dir must be reachable by the uid commands run as" * test_support::skip_if(not_root, "needs root, to run commands as another uid")) {
    TempDir dir;
    const auto hidden = dir.path() / "hidden";
    std::filesystem::create_directories(hidden);
    REQUIRE(::chmod(hidden.c_str(), 0700) == 0);
    auto sandbox = Sandbox::make({.root_dir = hidden / "sb"});
    REQUIRE(sandbox);
    const auto e = Executor::open({.policy = Policy::seed_default(), .sandbox = *sandbox});
    REQUIRE_FALSE(e);
    CHECK(e.error().message().find("cannot reach") != std::string::npos);
    CHECK(e.error().message().find(hidden.string() + " is mode 0700") != std::string::npos);
  }
}
