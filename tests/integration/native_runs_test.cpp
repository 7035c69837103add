// SPDX-License-Identifier: Apache-2.0
// What one native run can do to another, and what the host sees of native twins: a uid per run
// (per-uid kernel limits are not shared), twin folders closed to host processes running as
// nobody, a fresh network namespace per run, and what /proc/self/mountinfo still shows.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <fstream>
#include <functional>
#include <thread>
#include <set>

#include "background_run.hpp"
#include "sys/id_pool.hpp"
#include "sys/netns.hpp"
#include "test_support.hpp"

using namespace pagi_exec;
using test_support::BackgroundRun;
using test_support::HostLock;
using test_support::TempDir;

namespace {

Executor native_executor(const std::filesystem::path& root, IdRange ids = default_native_ids) {
  auto sandbox = Sandbox::make({.root_dir = root, .isolation = Isolation::native, .native_ids = ids});
  REQUIRE(sandbox);
  auto executor = Executor::open({.policy = Policy::seed_default(), .sandbox = *sandbox});
  REQUIRE_MESSAGE(executor, "native sandbox unavailable: " << executor.error().message());
  return *executor;
}

Request as_twin(const std::string& twin, std::string line) {
  return Request{.tool = "command_exec", .args = {std::move(line)}, .twin_id = twin};
}

// A shell line that prints `said`, then waits until the host creates `file` in its workspace.
std::string say_then_wait(const std::string& said, const std::string& file) {
  return said + "; while [ ! -e \"$PAGI_WORKSPACE/" + file + "\" ]; do sleep 0.01; done";
}

// Holds every inotify instance its uid may have, says how many and why the next one failed,
// then waits for the host's word.
constexpr char hold_inotify_py[] = R"(import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
held = []
while True:
    fd = libc.inotify_init1(0)
    if fd < 0:
        break
    held.append(fd)
print("held", len(held), ctypes.get_errno(), flush=True)
go = os.path.join(os.environ["PAGI_WORKSPACE"], sys.argv[1])
while not os.path.exists(go):
    time.sleep(0.01)
)";

constexpr char one_inotify_py[] =
    "import ctypes; l = ctypes.CDLL(None, use_errno=True); fd = l.inotify_init1(0); "
    "print('ok' if fd >= 0 else 'failed errno %d' % ctypes.get_errno())";

// Run A holds its uid's whole inotify allowance; returns what run B of another twin got.
std::string inotify_of_other_run(const Executor& executor, const std::filesystem::path& root, const std::string& go) {
  std::filesystem::create_directories(root / "twin-aegis");
  std::ofstream(root / "twin-aegis" / "hold.py") << hold_inotify_py;
  BackgroundRun a(executor, as_twin("twin-aegis", "/usr/bin/python3 \"$PAGI_WORKSPACE/hold.py\" " + go));
  const auto held = a.wait_line("held ");
  REQUIRE(held);
  MESSAGE("run A holds " << *held << " (count, errno of the next inotify_init1)");
  // The limit must really be reached (EMFILE: max_user_instances), or the test proves nothing.
  REQUIRE(held->substr(held->find(' ') + 1) == "24");
  auto b = executor.run(as_twin("twin-sentinel", "/usr/bin/python3 -c \"" + std::string(one_inotify_py) + "\""));
  std::ofstream(root / "twin-aegis" / go) << "go";
  REQUIRE(a.finish());
  REQUIRE(b);
  REQUIRE(b->out.lines.size() == 1);
  return b->out.lines[0];
}

bool is_root() { return ::geteuid() == 0; }

}  // namespace

TEST_SUITE("native_runs") {
  TEST_CASE("the id pool lends each id to one holder at a time, most recently returned first") {
    auto pool = sys::IdPool::make(1000, 3);
    REQUIRE(pool);
    auto a = (*pool)->acquire(), b = (*pool)->acquire(), c = (*pool)->acquire();
    REQUIRE((a && b && c));
    CHECK(std::set<std::uint32_t>{a->id(), b->id(), c->id()} == std::set<std::uint32_t>{1000, 1001, 1002});
    const auto exhausted = (*pool)->acquire();
    REQUIRE_FALSE(exhausted);
    CHECK(exhausted.error().message().find("in use") != std::string::npos);
    const auto returned = b->id();
    b->reset();
    auto again = (*pool)->acquire();
    REQUIRE(again);
    CHECK(again->id() == returned);
    CHECK((*pool)->in_use() == 3);
    CHECK_FALSE(sys::IdPool::make(0xFFFFFFF0U, 32));
    CHECK_FALSE(Sandbox::make({.isolation = Isolation::native, .native_ids = {65000, 1000}}));  // holds 65534
    CHECK_FALSE(Sandbox::make({.isolation = Isolation::native, .native_ids = {100000, 1}}));
  }

  TEST_CASE("the network namespace pool hands out fresh, distinct namespaces, none of them ours" *
            test_support::skip_if(!is_root(), "network namespaces need root")) {
    auto pool = sys::NetnsPool::make(3);
    REQUIRE(pool);
    (*pool)->wait_full();
    struct stat ours{};
    REQUIRE(::stat("/proc/self/ns/net", &ours) == 0);
    std::set<ino_t> seen{ours.st_ino};
    std::vector<sys::unique_fd> held;
    for (int i = 0; i < 3; ++i) {
      auto ns = (*pool)->take("twin-a");
      REQUIRE(ns);
      struct stat st{};
      REQUIRE(::fstat(ns.get(), &st) == 0);
      CHECK(seen.insert(st.st_ino).second);
      held.push_back(std::move(ns));
    }
    const auto stats = (*pool)->stats();
    CHECK(stats.taken == 3);
    CHECK(stats.failed == 0);
  }

  TEST_CASE("a namespace given back is kept for its own twin only, and only when nothing is left in it" *
            test_support::skip_if(!is_root(), "network namespaces need root")) {
    auto pool = sys::NetnsPool::make(2);
    REQUIRE(pool);
    (*pool)->wait_full();
    const auto inode = [](const sys::unique_fd& ns) {
      struct stat st{};
      REQUIRE(::fstat(ns.get(), &st) == 0);
      return st.st_ino;
    };
    // Runs code on a thread of its own inside `ns` (setns moves only the calling thread).
    const auto inside = [](const sys::unique_fd& ns, const std::function<void()>& code) {
      std::thread([&] {
        REQUIRE(::setns(ns.get(), CLONE_NEWNET) == 0);
        code();
      }).join();
    };
    auto clean = (*pool)->take("twin-a");
    REQUIRE(clean);
    const auto clean_inode = inode(clean);
    (*pool)->give_back("twin-a", std::move(clean));
    (*pool)->wait_full();
    const auto other = (*pool)->take("twin-b");
    CHECK(inode(other) != clean_inode);  // another twin never gets it
    const auto again = (*pool)->take("twin-a");
    CHECK(inode(again) == clean_inode);  // its own twin does
    CHECK((*pool)->stats().reused == 1);

    // A socket still open in it (a listener a process outside would hold), or a connection in
    // TIME_WAIT: dropped, never handed out again.
    sys::unique_fd listener;
    (*pool)->wait_full();  // fresh ones are ready again
    auto with_listener = (*pool)->take("twin-a");
    REQUIRE(with_listener);
    inside(with_listener, [&] { listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); });
    REQUIRE(listener);
    (*pool)->wait_full();
    auto with_time_wait = (*pool)->take("twin-a");
    REQUIRE(with_time_wait);
    inside(with_time_wait, [] {
      sys::unique_fd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      socklen_t len = sizeof addr;
      REQUIRE(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
      REQUIRE(::listen(server.get(), 1) == 0);
      sys::unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      sys::unique_fd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
      REQUIRE(accepted);
      client.reset();  // the side that closes first keeps the connection in TIME_WAIT
      accepted.reset();
    });
    const auto listener_inode = inode(with_listener);
    const auto time_wait_inode = inode(with_time_wait);
    (*pool)->give_back("twin-a", std::move(with_listener));
    (*pool)->give_back("twin-a", std::move(with_time_wait));
    (*pool)->wait_full();
    CHECK((*pool)->stats().dropped == 2);
    for (int i = 0; i < 3; ++i) {
      const auto next = (*pool)->take("twin-a");
      if (!next) break;
      CHECK(inode(next) != listener_inode);
      CHECK(inode(next) != time_wait_inode);
    }
  }

  TEST_CASE("runs of two twins never share a network namespace" *
            test_support::skip_if(!is_root(), "native runs need root here")) {
    TempDir dir;
    const auto executor = native_executor(dir.path());
    std::set<std::string> namespaces;
    for (const char* twin : {"twin-aegis", "twin-sentinel"}) {
      for (int run = 0; run < 3; ++run) {
        const auto out = executor.run(as_twin(twin, "readlink /proc/self/ns/net"));
        REQUIRE(out);
        REQUIRE(out->out.lines.size() == 1);
        namespaces.insert(std::string(twin) + " " + out->out.lines[0]);
        executor.wait_for_cleanup();
      }
    }
    std::set<std::string> by_namespace;
    for (const auto& entry : namespaces) by_namespace.insert(entry.substr(entry.find(' ') + 1));
    MESSAGE(namespaces.size() << " (twin, namespace) pairs, " << by_namespace.size() << " namespaces");
    CHECK(by_namespace.size() == namespaces.size());  // no namespace seen by both twins
  }

  TEST_CASE("two concurrent runs of different twins have different uids, neither 0 nor 65534" *
            test_support::skip_if(!is_root(), "the uid pool needs a server running as root (a user namespace maps one uid)")) {
    TempDir dir;
    const auto executor = native_executor(dir.path());
    BackgroundRun a(executor, as_twin("twin-aegis", say_then_wait("echo uid $(id -u) $(id -g)", "go-uid")));
    const auto a_ids = a.wait_line("uid ");
    REQUIRE(a_ids);
    const auto b = executor.run(as_twin("twin-sentinel", "echo uid $(id -u) $(id -g)"));
    std::ofstream(dir.path() / "twin-aegis" / "go-uid") << "go";
    REQUIRE(a.finish());
    REQUIRE(b);
    REQUIRE(b->out.lines.size() == 1);
    const auto b_ids = b->out.lines[0].substr(4);
    MESSAGE("run A: uid/gid " << *a_ids << "; run B, at the same time: " << b_ids);
    CHECK(*a_ids != b_ids);
    for (const auto& ids : {*a_ids, b_ids}) {
      const auto uid = std::stoull(ids.substr(0, ids.find(' ')));
      CHECK(ids == std::to_string(uid) + " " + std::to_string(uid));  // gid = uid
      CHECK(uid > default_native_ids.first);
      CHECK(uid < std::uint64_t{default_native_ids.first} + default_native_ids.count);
    }
  }

  TEST_CASE("a run's uid goes back to the pool only after its processes are gone, and is lent again" *
            test_support::skip_if(!is_root(), "the uid pool needs root")) {
    TempDir dir;
    const auto executor = native_executor(dir.path(), {2000000000, 3});  // two run uids
    const auto first = executor.run(as_twin("twin-aegis", "id -u"));
    executor.wait_for_cleanup();  // the init is reaped, then the uid returned
    const auto second = executor.run(as_twin("twin-aegis", "id -u"));
    REQUIRE((first && second));
    CHECK(first->out.lines == second->out.lines);  // the most recently returned uid is lent first
    executor.wait_for_cleanup();
    // Both run uids busy: a third concurrent run is refused, naming the pool.
    BackgroundRun a(executor, as_twin("twin-aegis", say_then_wait("echo started", "go-a")));
    BackgroundRun b(executor, as_twin("twin-sentinel", say_then_wait("echo started", "go-b")));
    REQUIRE(a.wait_line("started"));
    REQUIRE(b.wait_line("started"));
    const auto third = executor.run(as_twin("twin-aegis", "true"));
    std::ofstream(dir.path() / "twin-aegis" / "go-a") << "go";
    std::ofstream(dir.path() / "twin-sentinel" / "go-b") << "go";
    REQUIRE_FALSE(third);
    CHECK(third.error().message().find("in use") != std::string::npos);
  }

  TEST_CASE("a twin granted network stays in the host's network namespace; others get a fresh one each run" *
            test_support::skip_if(!is_root(), "needs root")) {
    TempDir dir;
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-net"] = {.allow = {"*"}, .network = NetworkAccess::host};
    auto policy = Policy::make(spec);
    REQUIRE(policy);
    auto sandbox = Sandbox::make({.root_dir = dir.path(), .isolation = Isolation::native});
    REQUIRE(sandbox);
    auto executor = Executor::open({.policy = *policy, .sandbox = *sandbox});
    REQUIRE(executor);
    const auto line = "readlink /proc/self/ns/net";
    const auto granted = executor->run(as_twin("twin-net", line));
    // Two runs alive at once (so the kernel cannot have recycled a namespace's inode number).
    BackgroundRun first(*executor, as_twin("twin-aegis", say_then_wait("echo ns $(readlink /proc/self/ns/net)", "go-ns")));
    const auto first_ns = first.wait_line("ns ");
    const auto second = executor->run(as_twin("twin-sentinel", line));
    std::ofstream(dir.path() / "twin-aegis" / "go-ns") << "go";
    REQUIRE((granted && first_ns && second && first.finish()));
    char host[64] = {};
    REQUIRE(::readlink("/proc/self/ns/net", host, sizeof host - 1) > 0);
    CHECK(granted->out.lines == std::vector<std::string>{host});
    CHECK(*first_ns != host);
    REQUIRE(second->out.lines.size() == 1);
    CHECK(second->out.lines[0] != host);
    CHECK(second->out.lines[0] != *first_ns);
  }

  TEST_CASE("a run holding its uid's inotify limit leaves another twin's run its own" *
            test_support::skip_if(!is_root(), "the uid pool needs root")) {
    // Both subcases use ids every test binary shares (65534, and the default pool's first ids).
    const HostLock shared_ids("inotify-ids");
    TempDir dir;
    SUBCASE("with the uid pool (default): run B's inotify_init1 works") {
      const auto executor = native_executor(dir.path());
      const auto b = inotify_of_other_run(executor, dir.path(), "go-pool");
      MESSAGE("with the pool, run B's inotify_init1: " << b);
      CHECK(b == "ok");
    }
    SUBCASE("without it (TOOLS_UID_POOL=off, every run uid 65534) the limit is shared: the attack is real") {
      const auto executor = native_executor(dir.path(), IdRange{});
      const auto b = inotify_of_other_run(executor, dir.path(), "go-shared");
      MESSAGE("without the pool, run B's inotify_init1: " << b);
      CHECK(b == "failed errno 24");
    }
  }

  TEST_CASE("a host process running as nobody cannot list or read a native twin's folder" *
            test_support::skip_if(!is_root(), "needs root to become nobody")) {
    TempDir dir;
    std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                                 std::filesystem::perms::others_exec);
    const auto executor = native_executor(dir.path());
    REQUIRE(executor.run({.tool = "file_write", .args = {"secret.txt", "twin-only\n"}, .twin_id = "twin-aegis"}));
    const auto run = executor.run(as_twin("twin-aegis", "ls /workspace; cat /workspace/secret.txt"));
    REQUIRE(run);
    CHECK(run->out.lines == std::vector<std::string>{"secret.txt", "twin-only"});  // the run itself may read it
    const auto twin = dir.path() / "twin-aegis";
    struct stat st{};
    REQUIRE(::stat(twin.c_str(), &st) == 0);
    CHECK(st.st_uid == 0);
    CHECK(st.st_gid == default_native_ids.first);
    CHECK((st.st_mode & 07777) == 0750);
    // A forked helper becomes uid/gid 65534 (nobody/nogroup, the ids every cwd/bwrap command
    // and many daemons run as) and tries.
    int result[2] = {-1, -1};  // errno of opendir, of open
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const gid_t nogroup = 65534;
      if (::setgroups(1, &nogroup) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(1);
      DIR* listing = ::opendir(twin.c_str());
      const int errs[2] = {listing == nullptr ? errno : 0,
                           ::open((twin / "secret.txt").c_str(), O_RDONLY) < 0 ? errno : 0};
      (void)!::write(fds[1], errs, sizeof errs);
      ::_exit(0);
    }
    ::close(fds[1]);
    REQUIRE(::read(fds[0], result, sizeof result) == sizeof result);
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    MESSAGE("as nobody: opendir errno " << result[0] << ", open errno " << result[1]);
    CHECK(result[0] == EACCES);
    CHECK(result[1] == EACCES);
  }

  TEST_CASE("twin folders an older version left readable by nogroup are closed when the executor starts" *
            test_support::skip_if(!is_root(), "needs root")) {
    TempDir dir;
    const auto old = dir.path() / "twin-old";
    std::filesystem::create_directories(old);
    REQUIRE(::chown(old.c_str(), 0, 65534) == 0);
    REQUIRE(::chmod(old.c_str(), 0750) == 0);
    (void)native_executor(dir.path());
    struct stat st{};
    REQUIRE(::stat(old.c_str(), &st) == 0);
    CHECK(st.st_gid == default_native_ids.first);
    CHECK((st.st_mode & 07777) == 0750);
  }

  TEST_CASE("mountinfo inside a native run: no mount of the sandbox dir, only /workspace's own root" *
            test_support::skip_if(!is_root(), "the template namespace needs root")) {
    TempDir dir;
    const auto executor = native_executor(dir.path());
    const auto run = executor.run(as_twin("twin-aegis", "cat /proc/self/mountinfo; ls /.host 2>&1"));
    REQUIRE(run);
    std::vector<std::string> naming_sandbox;
    for (const auto& line : run->out.lines) {
      MESSAGE(line);
      if (line.find(dir.path().string()) != std::string::npos) naming_sandbox.push_back(line);
      CHECK(line.find(" /.host") == std::string::npos);  // the template holds no host folder any more
    }
    // What remains: /workspace's root field is the folder's path inside its file system, which
    // the kernel prints for every bind mount (show_mountinfo: the mount's root dentry). On a
    // SANDBOX_DIR of its own file system it would be "/twin-aegis".
    REQUIRE(naming_sandbox.size() == 1);
    CHECK(naming_sandbox[0].find(" /workspace ") != std::string::npos);
    CHECK(run->out.lines.back().find("No such file or directory") != std::string::npos);
  }
}
