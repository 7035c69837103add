// SPDX-License-Identifier: Apache-2.0
// The spawn helper (sys/spawn_helper.hpp): runs go through it once started, it refuses to start
// in a multithreaded process, its native plan survives the trip, and when it is killed the run in
// flight ends and later runs are cloned directly. This binary runs with the helper started by the
// test main (PAGI_EXEC_TEST_SPAWN_HELPER=1, see tests/meson.build).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <sstream>
#include <thread>

#include "sys/mountns.hpp"
#include "sys/rlimits.hpp"
#include "sys/seccomp.hpp"
#include "sys/spawn_helper.hpp"
#include "sys/tree_wire.hpp"
#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::chrono_literals;
using test_support::shell;
using test_support::TempDir;

namespace {

bool native_possible() {
  TempDir dir;
  auto sandbox = Sandbox::make({.root_dir = dir.path(), .isolation = Isolation::native});
  return sandbox && make_native_spawner(*sandbox).has_value();
}

// The helper's children: its pooled supervisors, and the roots of runs in flight.
std::set<pid_t> helper_children() {
  const auto helper = std::to_string(sys::spawn_helper_pid());
  std::istringstream list(test_support::read_file("/proc/" + helper + "/task/" + helper + "/children"));
  std::set<pid_t> pids;
  for (pid_t pid = 0; list >> pid;) pids.insert(pid);
  return pids;
}

// Once the server let go of every run, the helper trims its pool to the four it keeps at rest;
// it acts on the hang-ups as they come, so poll for it (~10 s at most). The count it settled on.
std::size_t wait_until_at_rest() {
  for (int i = 0; i < 1000 && helper_children().size() != 4; ++i) std::this_thread::sleep_for(10ms);
  return helper_children().size();
}

}  // namespace

TEST_SUITE("spawn_helper") {
  TEST_CASE("the test main started the helper") {
    REQUIRE_MESSAGE(sys::spawn_helper_pid() > 0, "run this binary with PAGI_EXEC_TEST_SPAWN_HELPER=1");
    CHECK(test_support::process_alive(sys::spawn_helper_pid()));
    CHECK(test_support::read_file("/proc/" + std::to_string(sys::spawn_helper_pid()) + "/comm") == "pagi-spawner\n");
  }

  TEST_CASE("given the pagi-spawner program, the helper becomes it; without it, it stays the host's fork") {
    const char* program = std::getenv("PAGI_EXEC_SPAWNER");
    const bool wanted = program != nullptr && *program != '\0';
    CHECK(sys::spawn_helper_is_program() == wanted);
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(sys::spawn_helper_pid()) + "/exe", ec);
    REQUIRE_FALSE(ec);
    if (wanted) {
      CHECK(exe == std::filesystem::path(program));
    } else {
      CHECK(exe == std::filesystem::read_symlink("/proc/self/exe"));
    }
  }

  TEST_CASE("a pagi-spawner program others may change is refused") {
    test_support::TempDir dir;
    const auto program = dir.path() / "pagi-spawner";
    std::ofstream(program) << "#!/bin/sh\n";
    std::filesystem::permissions(program, std::filesystem::perms::owner_all | std::filesystem::perms::others_write);
    auto started = pagi_exec::start_spawn_helper(program);
    REQUIRE_FALSE(started);
    CHECK(started.error().message().find("may be changed by others") != std::string::npos);
  }

  TEST_CASE("cwd runs go through the helper and behave as before") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto before = sys::spawn_counts();
    const auto outcome = executor.run(shell("echo out; echo err >&2; exit 3"));
    REQUIRE(outcome);
    CHECK(outcome->exit_code == 3);
    CHECK(outcome->out.lines == std::vector<std::string>{"out"});
    CHECK(outcome->err.lines == std::vector<std::string>{"err"});
    executor.wait_for_cleanup();  // the helper's status for the reap came back
    const auto after = sys::spawn_counts();
    CHECK(after.via_helper == before.via_helper + 1);
    CHECK(after.direct == before.direct);
  }

  TEST_CASE("threads share the helper's socket: each run gets its own tree and output") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto before = sys::spawn_counts();
    constexpr int threads = 16;
    constexpr int runs_each = 8;
    std::vector<std::string> mismatches[threads];
    {
      std::vector<std::jthread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          for (int r = 0; r < runs_each; ++r) {
            const std::string tag = std::to_string(t) + "-" + std::to_string(r);
            const auto outcome = executor.run(shell("echo " + tag + "; exit " + std::to_string(r)));
            if (!outcome || outcome->out.lines != std::vector<std::string>{tag} || outcome->exit_code != r) {
              mismatches[t].push_back(tag);
            }
          }
        });
      }
    }
    for (const auto& wrong : mismatches) CHECK(wrong.empty());
    executor.wait_for_cleanup();
    CHECK(sys::spawn_counts().via_helper == before.via_helper + threads * runs_each);
  }

  TEST_CASE("native runs go through the helper, whose init shows none of its argv") {
    if (!native_possible()) {
      test_support::skip_case("this machine cannot make a native sandbox");
      return;
    }
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path(), Isolation::native);
    const auto before = sys::spawn_counts();
    const auto outcome = executor.run(shell("tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm"));
    REQUIRE_MESSAGE(outcome, (outcome ? "" : outcome.error().message()));
    CAPTURE(outcome->out.lines);
    CHECK(outcome->exit_code == 0);
    REQUIRE(outcome->out.lines.size() == 2);
    CHECK(outcome->out.lines[0].starts_with("pagi-exec-init"));
    CHECK(outcome->out.lines[0].find("spawn_helper") == std::string::npos);  // the test binary's path
    CHECK(outcome->out.lines[1] == "pagi-spawner");  // cloned from the helper, not from this process
    executor.wait_for_cleanup();
    CHECK(sys::spawn_counts().via_helper == before.via_helper + 1);
  }

  TEST_CASE("start_spawn_helper refuses while another thread runs") {
    std::latch release(1);
    std::thread other([&] { release.wait(); });
    const auto started = start_spawn_helper();
    release.count_down();
    other.join();
    REQUIRE_FALSE(started);
    CHECK(started.error().code == Errc::spawn_failed);
    CHECK(started.error().message().find("before any thread exists") != std::string::npos);
  }

  TEST_CASE("a native plan and its filter come back from the sealed memfd as they went") {
    TempDir dir;
    auto plan = sys::plan_root((dir.path() / "root").string(), 1 << 20, 2 << 20, 65534, 65534,
                               IdRange{.first = 1'900'000'000, .count = 64});
    REQUIRE(plan);
    auto filter = sys::SeccompProgram::make_default();
    REQUIRE(filter);
    auto sealed = sys::seal_native_shared(*plan, *filter);
    REQUIRE(sealed);
    CHECK(::write(sealed->get(), "x", 1) < 0);  // sealed: nobody changes what the helper cached
    auto read = sys::read_native_shared(sealed->get());
    REQUIRE(read);
    CHECK(read->seccomp == *filter);
    CHECK(read->root.root == plan->root);
    CHECK(read->root.dirs == plan->dirs);
    REQUIRE(read->root.files.size() == plan->files.size());
    for (std::size_t i = 0; i < plan->files.size(); ++i) {
      CHECK(read->root.files[i].path == plan->files[i].path);
      CHECK(read->root.files[i].content == plan->files[i].content);
    }
    REQUIRE(read->root.ro_binds.size() == plan->ro_binds.size());
    for (std::size_t i = 0; i < plan->ro_binds.size(); ++i) {
      CHECK(read->root.ro_binds[i].source == plan->ro_binds[i].source);
      CHECK(read->root.ro_binds[i].extra_flags == plan->ro_binds[i].extra_flags);
    }
    REQUIRE(read->root.links.size() == plan->links.size());
    for (std::size_t i = 0; i < plan->links.size(); ++i) {
      CHECK(read->root.links[i].target == plan->links[i].target);
      CHECK(read->root.links[i].path == plan->links[i].path);
    }
    for (std::size_t i = 0; i < plan->ro_binds.size(); ++i) CHECK(read->root.ro_binds[i].target == plan->ro_binds[i].target);
    CHECK(read->root.root_options == plan->root_options);
    CHECK(read->root.tmp_options == plan->tmp_options);
    CHECK(read->root.work_options == plan->work_options);
    CHECK(read->root.proc == plan->proc);
    CHECK(read->root.dev == plan->dev);
    CHECK(read->root.tmp == plan->tmp);
    CHECK(read->root.work == plan->work);
    CHECK(read->root.workspace == plan->workspace);
  }

  TEST_CASE("a run's message decodes to the arguments that were encoded, each descriptor in its place") {
    std::vector<sys::unique_fd> originals;
    for (int i = 0; i < 9; ++i) {
      originals.emplace_back(::memfd_create(("fd" + std::to_string(i)).c_str(), MFD_CLOEXEC));
      REQUIRE(originals.back());
    }
    const auto fd = [&](int i) { return originals[static_cast<std::size_t>(i)].get(); };
    const char* argv[] = {"/bin/echo", "a b", "", nullptr};
    const char* envp[] = {"PATH=/usr/bin", "X=1", nullptr};
    const sys::RlimitSet limits = sys::make_rlimits(7, 1 << 20, 64, 0);
    const sys::ChildArgs args{.argv = argv, .envp = envp, .cwd = "/tmp/w", .stdout_fd = fd(0), .stderr_fd = fd(1),
                              .report_fd = fd(2), .control_fd = fd(3), .timeout_us = 1234567, .rlimits = &limits,
                              .drop = true, .no_new_privs = true, .uid = 4242, .gid = 4343, .fd3 = -1,
                              .cgroup_procs = {fd(4), -1}};
    sys::NativeArgs native{.template_fd = fd(5), .workspace_tree = -1, .workspace = "/srv/ws", .work_options = "size=1",
                           .netns_fd = fd(6), .host_network = false, .uid = 77, .gid = 78, .workspace_gid = 79,
                           .user_namespace = true, .memory_by_rlimit = true};
    const auto message = sys::encode_run(args, &native, fd(7), fd(8), fd(2));
    // The kernel's SCM_RIGHTS, by hand: the receiver gets new numbers for the same files.
    std::vector<sys::unique_fd> received;
    for (const int sent : message.fds) received.emplace_back(::fcntl(sent, F_DUPFD_CLOEXEC, 0));
    auto run = sys::ReceivedRun::decode(message.bytes, std::move(received));
    REQUIRE_MESSAGE(run, (run ? "" : run.error().message()));
    const auto same_file = [](int a, int b) {
      struct stat sa {}, sb {};
      return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
    };
    const sys::ChildArgs& got = (*run)->args;
    CHECK(std::string(got.argv[1]) == "a b");
    CHECK(std::string(got.argv[2]).empty());
    CHECK(got.argv[3] == nullptr);
    CHECK(std::string(got.envp[1]) == "X=1");
    CHECK(got.envp[2] == nullptr);
    CHECK(std::string(got.cwd) == "/tmp/w");
    CHECK(same_file(got.stdout_fd, fd(0)));
    CHECK(same_file(got.stderr_fd, fd(1)));
    CHECK(same_file(got.report_fd, fd(2)));
    CHECK(same_file(got.control_fd, fd(3)));
    CHECK(same_file(got.cgroup_procs[0], fd(4)));
    CHECK(got.cgroup_procs[1] == -1);
    CHECK(got.fd3 == -1);
    CHECK(got.timeout_us == 1234567);
    CHECK(got.rlimits->entries[0].resource == limits.entries[0].resource);
    CHECK(got.rlimits->entries[0].value == limits.entries[0].value);
    CHECK((got.drop && got.no_new_privs && got.uid == 4242 && got.gid == 4343));
    REQUIRE((*run)->native);
    const sys::NativeArgs& n = *(*run)->native;
    CHECK(same_file(n.template_fd, fd(5)));
    CHECK(n.workspace_tree == -1);
    CHECK(same_file(n.netns_fd, fd(6)));
    CHECK(std::string(n.workspace) == "/srv/ws");
    CHECK(std::string(n.work_options) == "size=1");
    CHECK((n.uid == 77 && n.gid == 78 && n.workspace_gid == 79 && n.user_namespace && n.memory_by_rlimit));
    CHECK_FALSE(n.host_network);
    CHECK(same_file((*run)->maps_fd, fd(7)));
    CHECK(same_file((*run)->native_shared, fd(8)));
    CHECK(same_file((*run)->reply, fd(2)));
    CHECK(sys::native_clone_flags(n) == sys::native_clone_flags(native));

    // Cut short, or with a descriptor missing: refused, not guessed.
    CHECK_FALSE(sys::ReceivedRun::decode(std::string_view(message.bytes).substr(0, message.bytes.size() - 1), {}));
    CHECK_FALSE(sys::ReceivedRun::decode(message.bytes, {}));
  }

  TEST_CASE("a plan too large for one message is cloned directly, whole") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const std::string big(sys::max_run_message_bytes, 'x');
    const auto before = sys::spawn_counts();
    const auto outcome = executor.run(shell("printf %s '" + big + "' | wc -c"));
    REQUIRE(outcome);
    CHECK(outcome->out.lines == std::vector<std::string>{std::to_string(big.size())});
    executor.wait_for_cleanup();
    CHECK(sys::spawn_counts().direct == before.direct + 1);
  }

  TEST_CASE("SIGKILL of a host using the helper: its helper and the whole run end too") {
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    TempDir dir;
    // The command says it runs through a fifo the test reads: a handshake, not a wait.
    const auto meeting = dir.path() / "meeting";
    std::filesystem::create_directory(meeting);
    REQUIRE(::chmod(meeting.c_str(), 0777) == 0);
    const auto fifo = meeting / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0666) == 0);
    REQUIRE(::chmod(fifo.c_str(), 0666) == 0);
    const std::string line = "(setsid sh -c 'echo $$ > " + fifo.string() + "; exec sleep 1000' &); exec sleep 1000";
    const std::string sandbox = (dir.path() / "sb").string();
    const pid_t host = ::fork();
    REQUIRE(host >= 0);
    if (host == 0) {
      ::execl(bin, bin, "run", "--twin", "twin-aegis", "--isolation", "cwd", "--sandbox-dir", sandbox.c_str(),
              "--timeout-ms", "600000", "--", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(99);
    }
    pid_t detached = 0;
    std::ifstream(fifo) >> detached;  // blocks until the command's detached process wrote its pid
    REQUIRE(detached > 0);
    // The host's children: its helper (the supervisor is the helper's child, not the host's).
    std::istringstream children(
        test_support::read_file("/proc/" + std::to_string(host) + "/task/" + std::to_string(host) + "/children"));
    pid_t helper = 0;
    for (pid_t child; children >> child;) {
      if (test_support::read_file("/proc/" + std::to_string(child) + "/comm") == "pagi-spawner\n") helper = child;
    }
    ::kill(host, SIGKILL);
    ::waitpid(host, nullptr, 0);
    CHECK(helper > 0);
    if (helper > 0) CHECK(test_support::wait_gone(helper));
    CHECK(test_support::wait_gone(detached));  // left the command's session, still killed
  }

  TEST_CASE("a host that is not root: its helper's user-namespaced init gets its id maps from the host" *
            test_support::skip_if(::geteuid() != 0 || !std::filesystem::exists("/usr/bin/setpriv"),
                                  "needs root and /usr/bin/setpriv, to become uid 65534")) {
    const char* bin = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(bin != nullptr);
    TempDir dir;
    const auto sandbox = dir.path() / "sb";
    std::filesystem::create_directories(sandbox);
    REQUIRE(::chown(sandbox.c_str(), 65534, 65534) == 0);
    const auto ran = test_support::run_program(
        {"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", bin, "run", "--twin",
         "twin-aegis", "--sandbox-dir", sandbox.string(), "--isolation", "native", "--", "sh", "-c",
         "cat /proc/self/uid_map; cat /proc/1/comm"},
        true);
    CAPTURE(ran.out);
    if (ran.status != 0 && ran.out.find("user namespace") != std::string::npos) {
      test_support::skip_case("this machine gives no user namespace to an unprivileged process");
      return;
    }
    CHECK(ran.status == 0);
    std::istringstream map(ran.out);
    std::uint64_t inside = 1, outside = 1, count = 0;
    map >> inside >> outside >> count;
    CHECK(inside == 65534);   // the host's uid, mapped to itself
    CHECK(outside == 65534);
    CHECK(count == 1);
    CHECK(ran.out.find("pagi-spawner") != std::string::npos);  // the init came from the host's helper
  }

  TEST_CASE("cwd runs one after another share a pooled supervisor; runs at once each have their own") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 600s);
    // A command's parent is its supervisor; the supervisor's parent is the helper.
    const auto supervisor_of = [&](const char* line) {
      const auto outcome = executor.run(shell(line));
      REQUIRE_MESSAGE(outcome, (outcome ? "" : outcome.error().message()));
      REQUIRE(outcome->out.lines.size() == 1);
      return static_cast<pid_t>(std::stol(outcome->out.lines.front()));
    };
    const pid_t first = supervisor_of("echo $PPID");
    CHECK(helper_children().contains(first));
    executor.wait_for_cleanup();  // the server let go of the run: the supervisor may serve again
    wait_until_at_rest();
    CHECK(supervisor_of("echo $PPID") == first);

    // Four runs alive together (each waits until all four have printed, a handshake) have four
    // supervisors.
    constexpr std::size_t runs = 4;
    std::latch all_started(static_cast<std::ptrdiff_t>(runs));
    std::vector<pid_t> supervisors(runs);
    {
      std::vector<std::jthread> threads;
      for (std::size_t i = 0; i < runs; ++i) {
        threads.emplace_back([&, i] {
          std::stop_source stop;
          RunHooks hooks;
          hooks.output = [&](OutputStream, std::string_view chunk) {
            supervisors[i] = static_cast<pid_t>(std::stol(std::string(chunk)));
            all_started.arrive_and_wait();
            stop.request_stop();
            return true;
          };
          (void)executor.run(shell("echo $PPID; exec sleep 1000"), stop.get_token(), hooks);
        });
      }
    }
    std::sort(supervisors.begin(), supervisors.end());
    CHECK(std::adjacent_find(supervisors.begin(), supervisors.end()) == supervisors.end());
    for (const pid_t pid : supervisors) CHECK(pid > 1);
  }

  TEST_CASE("a pooled supervisor killed mid-run: that run says so, the next one gets a fresh supervisor") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 600s);
    pid_t killed = 0;
    RunHooks hooks;
    hooks.output = [&](OutputStream, std::string_view chunk) {
      if (killed == 0) {
        killed = static_cast<pid_t>(std::stol(std::string(chunk)));
        ::kill(killed, SIGKILL);
      }
      return true;
    };
    const auto outcome = executor.run(shell("echo $PPID; exec sleep 1000"), {}, hooks);
    REQUIRE(killed > 1);
    REQUIRE_FALSE(outcome);
    CHECK(outcome.error().message().find("the execution supervisor died") != std::string::npos);
    const auto next = executor.run(shell("echo $PPID"));
    REQUIRE_MESSAGE(next, (next ? "" : next.error().message()));
    REQUIRE(next->out.lines.size() == 1);
    CHECK(std::stol(next->out.lines.front()) != killed);
  }

  TEST_CASE("at rest the helper keeps exactly four idle supervisors, whatever the last burst was") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    {
      std::vector<std::jthread> threads;
      for (int i = 0; i < 12; ++i) threads.emplace_back([&] { (void)executor.run(shell("true")); });
    }
    executor.wait_for_cleanup();
    CHECK(wait_until_at_rest() == 4);
    // Nothing of the runs they served stays open in them: stdio (/dev/null) and the helper's socket.
    for (const pid_t pid : helper_children()) {
      const auto fds = std::filesystem::path("/proc") / std::to_string(pid) / "fd";
      CHECK(std::distance(std::filesystem::directory_iterator(fds), std::filesystem::directory_iterator()) == 4);
    }
  }

  // Last in this file: the helper stays dead for the rest of the binary.
  TEST_CASE("SIGKILL of the helper: the run in flight ends, later runs are cloned directly") {
    const pid_t helper = sys::spawn_helper_pid();
    REQUIRE(helper > 0);
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path(), Isolation::cwd, 600s);
    std::stop_source stop;
    bool killed_helper = false;
    RunHooks hooks;
    hooks.output = [&](OutputStream, std::string_view chunk) {
      if (!killed_helper && chunk.find("up") != std::string_view::npos) {
        ::kill(helper, SIGKILL);
        ::waitpid(helper, nullptr, 0);  // our child: gone for sure once reaped
        killed_helper = true;
        stop.request_stop();  // the command would sleep on; nothing else would end it
      }
      return true;
    };
    const auto before = sys::spawn_counts();
    const auto outcome = executor.run(shell("echo up; exec sleep 1000"), stop.get_token(), hooks);
    REQUIRE(killed_helper);
    REQUIRE_MESSAGE(outcome, (outcome ? "" : outcome.error().message()));
    CHECK(outcome->cancelled);
    executor.wait_for_cleanup();  // the reap does not wait for a status that will never come
    CHECK(sys::spawn_counts().via_helper == before.via_helper + 1);

    const auto next = executor.run(shell("echo again"));
    REQUIRE_MESSAGE(next, (next ? "" : next.error().message()));
    CHECK(next->out.lines == std::vector<std::string>{"again"});
    executor.wait_for_cleanup();
    const auto after = sys::spawn_counts();
    CHECK(after.direct == before.direct + 1);
    CHECK(after.via_helper == before.via_helper + 1);
  }
}
