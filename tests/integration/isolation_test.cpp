// SPDX-License-Identifier: Apache-2.0
// Escape attempts, run in every isolation mode. Each probe tries to break out; the test asserts
// what README's isolation table claims for each mode, and can write that table
// (PAGI_EXEC_ISOLATION_TABLE=<file>) from the results, so the README never claims more than runs.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "background_run.hpp"
#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

// A loopback TCP listener; counts connections that arrive.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] bool was_reached() const {
    const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return false;
    ::close(client);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// True when a host process runs with exactly this argv (NUL-separated in /proc/<pid>/cmdline).
bool host_process_with_cmdline(const std::string& cmdline) { return !test_support::pids_with_cmdline(cmdline).empty(); }

// A sleep duration no other test (or other run of this one) uses, to find the daemon by argv.
std::string daemon_marker(int probe) {
  return "1000." + std::to_string(::getpid()) + std::to_string(probe);
}

// The host's view of the uid of a command: runs `sleep <marker>` and reads the Uid line of
// /proc/<pid>/status while it sleeps. Real, effective, saved and file-system uid: the smallest
// is returned, so 0 means any of them is root.
std::optional<long> uid_seen_from_host(const Executor& e, const std::string& marker) {
  std::stop_source stop;
  std::thread run([&] { (void)e.run(test_support::shell("exec sleep " + marker), stop.get_token()); });
  std::optional<long> uid;
  const std::string wanted = std::string("sleep") + '\0' + marker + '\0';
  for (int round = 0; round < 3000 && !uid; ++round) {  // until the run is up (bounded)
    for (const pid_t pid : test_support::pids_with_cmdline(wanted)) {
      std::istringstream status(test_support::read_file("/proc/" + std::to_string(pid) + "/status"));
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("Uid:", 0) != 0) continue;
        std::istringstream ids(line.substr(4));
        for (long id = 0; ids >> id;) uid = uid ? std::min(*uid, id) : id;
      }
    }
    if (!uid) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.request_stop();
  run.join();
  return uid;
}

// Two concurrent runs of different twins on one 127.0.0.1: run A (twin-aegis) listens with
// SO_REUSEPORT, as many servers do; run B (twin-sentinel) tries to connect to it, then binds the
// same port with SO_REUSEPORT to take a share of A's connections. Every step is a handshake:
// A says "ready <port>", B says what it managed, A then connects to its own port 40 times and
// counts what reached it; B counts what it stole.
constexpr char listener_py[] = R"(import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
port = s.getsockname()[1]
u = socket.socket(socket.AF_UNIX)
u.bind("\0pagi-exec-probe-" + sys.argv[1])
u.listen(8)
print("ready", port, flush=True)
go = os.path.join(os.environ["PAGI_WORKSPACE"], "go-" + sys.argv[1])
while not os.path.exists(go):
    time.sleep(0.01)
clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
s.setblocking(False)
own = 0
while True:
    try:
        s.accept()[0].close()
        own += 1
    except BlockingIOError:
        break
print("own", own, flush=True)
)";

constexpr char thief_py[] = R"(import os, socket, sys, time
port = int(sys.argv[1])
try:
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print("connect reached", flush=True)
except OSError:
    print("connect refused", flush=True)
try:
    socket.socket(socket.AF_UNIX).connect("\0pagi-exec-probe-" + sys.argv[2])
    print("unix reached", flush=True)
except OSError:
    print("unix refused", flush=True)
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    t.bind(("127.0.0.1", port))
    t.listen(128)
except OSError:
    print("bound no", flush=True)
    sys.exit(0)
print("bound yes", flush=True)
done = os.path.join(os.environ["PAGI_WORKSPACE"], "done-" + sys.argv[2])
while not os.path.exists(done):
    time.sleep(0.01)
t.setblocking(False)
stolen = 0
while True:
    try:
        t.accept()[0].close()
        stolen += 1
    except BlockingIOError:
        break
print("stole", stolen, flush=True)
)";

struct CrossRun {
  std::optional<std::string> connect;  // "reached" or "refused"
  std::optional<std::string> unix_socket;  // the same for an abstract unix socket
  int stolen = -1;                     // connections A made to its own port that reached B
};

CrossRun listener_and_thief(const Executor& e, const std::filesystem::path& scratch) {
  static int round = 0;
  const auto token = std::to_string(::getpid()) + "-" + std::to_string(++round);
  const auto a_dir = scratch / "sandbox" / "twin-aegis", b_dir = scratch / "sandbox" / "twin-sentinel";
  std::filesystem::create_directories(a_dir);
  std::filesystem::create_directories(b_dir);
  std::ofstream(a_dir / "listener.py") << listener_py;
  std::ofstream(b_dir / "thief.py") << thief_py;
  CrossRun seen;
  test_support::BackgroundRun a(e, test_support::shell("/usr/bin/python3 \"$PAGI_WORKSPACE/listener.py\" " + token));
  const auto port = a.wait_line("ready ");
  if (!port) return seen;
  Request b_request{.tool = "command_exec",
                    .args = {"/usr/bin/python3 \"$PAGI_WORKSPACE/thief.py\" " + *port + " " + token},
                    .twin_id = "twin-sentinel"};
  test_support::BackgroundRun b(e, b_request);
  seen.connect = b.wait_line("connect ");
  seen.unix_socket = b.wait_line("unix ");
  const auto bound = b.wait_line("bound ");
  std::ofstream(a_dir / ("go-" + token)) << "go";
  (void)a.finish();
  std::ofstream(b_dir / ("done-" + token)) << "done";
  if (bound == "yes") {
    const auto stolen = b.wait_line("stole ");
    seen.stolen = stolen ? std::stoi(*stolen) : -1;
  } else if (bound == "no") {
    seen.stolen = 0;
  }
  (void)b.finish();
  MESSAGE("another twin's run: connect " << seen.connect.value_or("(no answer)") << ", abstract unix socket "
                                         << seen.unix_socket.value_or("(no answer)") << ", took " << seen.stolen
                                         << " of 40 connections");
  return seen;
}

struct Probe {
  const char* name;   // what the attempt tries, as the README table shows it
  bool (*contained)(const Executor&, const std::filesystem::path& scratch);
};

Result<Outcome> sh(const Executor& executor, const std::string& line) { return executor.run(test_support::shell(line)); }

// The same with a short time limit, for probes that must be ended by it.
Result<Outcome> sh_until_timeout(const Executor& executor, const std::string& line) {
  auto request = test_support::shell(line);
  request.timeout_cap = std::chrono::milliseconds(1500);
  return executor.run(request);
}

const Probe probes[] = {
    {"read /etc/shadow",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "cat /etc/shadow");
       return o && o->exit_code != 0;
     }},
    {"read a file of the server outside the sandbox",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::ofstream(scratch / "server-secret") << "server-only";
       auto o = sh(e, "cat " + (scratch / "server-secret").string());
       return o && o->out.lines.empty();
     }},
    {"write outside the workspace",
     [](const Executor& e, const std::filesystem::path& scratch) {
       // A folder of the server's, and the host's world-writable temporary folder.
       const auto shared = std::filesystem::temp_directory_path() / ("pagi-exec-escape-" + std::to_string(::getpid()));
       (void)sh(e, "echo pwned > " + (scratch / "pwned").string() + "; echo pwned > " + shared.string());
       const bool written = std::filesystem::exists(scratch / "pwned") || std::filesystem::exists(shared);
       std::filesystem::remove(shared);
       return !written;
     }},
    {"write into a system folder (/usr)",
     [](const Executor& e, const std::filesystem::path&) {
       const std::filesystem::path target = "/usr/lib/pagi-exec-escape-probe";
       (void)sh(e, "echo pwned > " + target.string());
       const bool written = std::filesystem::exists(target);
       std::filesystem::remove(target);
       return !written;
     }},
    {"write outside through a symlink planted in the workspace",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::filesystem::create_directories(scratch / "linked");
       (void)sh(e, "ln -s " + (scratch / "linked").string() + " \"$PAGI_WORKSPACE/link\"; echo pwned > \"$PAGI_WORKSPACE/link/pwned\"");
       return !std::filesystem::exists(scratch / "linked" / "pwned");
     }},
    {"see or signal a host process (the test runner)",
     [](const Executor& e, const std::filesystem::path&) {
       const auto pid = std::to_string(::getpid());
       auto o = sh(e, "tr '\\0' ' ' < /proc/" + pid + "/cmdline; echo; kill -0 " + pid + " && echo signalled");
       if (!o) return false;
       for (const auto& line : o->out.lines) {
         if (line.find("isolation_test") != std::string::npos || line == "signalled") return false;
       }
       return true;
     }},
    {"connect to a TCP port on the host's 127.0.0.1",
     [](const Executor& e, const std::filesystem::path&) {
       Listener listener;
       auto o = sh(e, "bash -c 'echo hi > /dev/tcp/127.0.0.1/" + std::to_string(listener.port()) + "'");
       return o && o->exit_code != 0 && !listener.was_reached();
     }},
    {"read the server's environment variables",
     [](const Executor& e, const std::filesystem::path&) {
       ::setenv("PAGI_EXEC_PROBE_SECRET", "leaked-secret", 1);
       auto o = sh(e, "env; cat /proc/$PPID/environ 2>/dev/null | tr '\\0' '\\n'");
       if (!o) return false;
       for (const auto& line : o->out.lines) {
         if (line.find("leaked-secret") != std::string::npos) return false;
       }
       return true;
     }},
    {"use a descriptor the server holds open",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "ls /proc/self/fd");
       return o && o->out.lines == std::vector<std::string>{"0", "1", "2", "3"};
     }},
    {"leave a daemon running after the command exits",
     [](const Executor& e, const std::filesystem::path&) {
       const auto marker = daemon_marker(1);
       // The command ends only once the daemon runs (its /proc entry shows it), not after a guess.
       (void)sh(e, "(setsid sleep " + marker + " > /dev/null 2>&1 &) ; until cat /proc/[0-9]*/cmdline 2>/dev/null | "
                   "tr '\\0' ' ' | grep -q 'slee[p] " + marker + " '; do sleep 0.01; done");
       return !host_process_with_cmdline(std::string("sleep") + '\0' + marker + '\0');
     }},
    {"outlive the time limit with a double-forked daemon",
     [](const Executor& e, const std::filesystem::path&) {
       const auto marker = daemon_marker(2);
       (void)sh_until_timeout(e, "(setsid sh -c 'trap \"\" TERM; exec sleep " + marker + "' &) ; sleep 1000");
       return !host_process_with_cmdline(std::string("sleep") + '\0' + marker + '\0');
     }},
    {"gain root through a setuid binary",
     [](const Executor& e, const std::filesystem::path& scratch) {
       // A setuid-root copy of id(1) in the twin's workspace, where the command can run it.
       const auto workspace = scratch / "sandbox" / "twin-aegis";
       std::filesystem::create_directories(workspace);
       std::filesystem::copy_file("/usr/bin/id", workspace / "suid-id", std::filesystem::copy_options::overwrite_existing);
       ::chown((workspace / "suid-id").c_str(), 0, 0);
       ::chmod((workspace / "suid-id").c_str(), 04755);
       auto o = sh(e, "\"$PAGI_WORKSPACE/suid-id\" -u");
       return o && (o->out.lines.empty() || o->out.lines[0] != "0");
     }},
    {"mount a file system",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::filesystem::create_directories(scratch / "mnt");
       auto o = sh(e, "mount -t tmpfs none " + (scratch / "mnt").string() + " && echo mounted");
       ::umount2((scratch / "mnt").c_str(), MNT_DETACH);
       return o && o->out.lines.empty();
     }},
    {"create a nested user namespace",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "unshare -U true && echo created");
       return o && o->out.lines.empty();
     }},
    {"ptrace another process of the sandbox",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "sleep 5 & /usr/bin/python3 -c 'import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); "
                      "print(l.ptrace(16, int(sys.argv[1]), 0, 0))' $!");
       return o && (o->out.lines.empty() || o->out.lines[0] != "0");
     }},
    {"use keyctl, bpf or perf_event_open",
     [](const Executor& e, const std::filesystem::path&) {
       // keyctl(KEYCTL_GET_KEYRING_ID, session keyring, create), bpf(BPF_MAP_CREATE, {}), perf_event_open({})
       auto o = sh(e, "/usr/bin/python3 -c 'import ctypes; l=ctypes.CDLL(None,use_errno=True); a=ctypes.create_string_buffer(128); "
                      "print(l.syscall(250, 0, -3, 1), l.syscall(321, 0, a, 72), l.syscall(298, a, 0, -1, -1, 0))'");
       return o && o->out.lines.size() == 1 && o->out.lines[0] == "-1 -1 -1";
     }},
    {"start 1000 processes (fork bomb)",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "n=0; while [ $n -lt 1000 ]; do sleep 30 & n=$((n+1)); done 2>/dev/null; "
                      "wc -w < /proc/$$/task/$$/children");
       // The count includes wc itself.
       return o && (o->out.lines.empty() || std::stoi(o->out.lines[0]) < 1000);
     }},
    {"allocate 2 GiB of memory (memory bomb)",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "/usr/bin/python3 -c 'b = bytearray(2 << 30); b[::4096] = b\"x\" * len(b[::4096]); print(\"allocated\")'");
       return o && o->out.lines.empty();
     }},
    {"fill the disk (write 1 GiB)",
     [](const Executor& e, const std::filesystem::path&) {
       auto o = sh(e, "i=0; while [ $i -lt 16 ]; do head -c 67108864 /dev/zero > f$i || break; i=$((i+1)); done; "
                      "cat f* 2>/dev/null | wc -c");
       return o && !o->out.lines.empty() && o->out.lines.back() != "1073741824";
     }},
    {"write /proc/sys (kernel.core_pattern)",
     [](const Executor& e, const std::filesystem::path&) {
       // Writes the value back unchanged: harmless if it works, and it must not.
       auto o = sh(e, "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && echo WRITABLE");
       return o && o->out.lines.empty();
     }},
    {"run as host root",
     [](const Executor& e, const std::filesystem::path&) {
       // Seen from the host, whatever the sandbox's user namespace shows inside.
       const auto marker = daemon_marker(3);
       const auto uid = uid_seen_from_host(e, marker);
       return uid && *uid != 0;
     }},
    {"signal its own supervisor",
     [](const Executor& e, const std::filesystem::path&) {
       // The supervisor must survive to report, and nothing of the run may outlive the answer.
       const auto marker = daemon_marker(4);
       auto request = test_support::shell("sleep " + marker + " & kill -9 $PPID; sleep 1");
       request.timeout_cap = std::chrono::milliseconds(3000);
       auto o = e.run(request);
       return o && !o->timed_out && !host_process_with_cmdline(std::string("sleep") + '\0' + marker + '\0');
      }},
    {"hang a server thread: file_write into a FIFO in the workspace",
     [](const Executor& e, const std::filesystem::path& scratch) {
       if (!e.run({.tool = "file_write", .args = {"fifo-seed", "x"}, .twin_id = "twin-aegis"})) return false;
       // Planted from the host: native's workspace is read-only to commands; cwd and bwrap
       // commands can plant one themselves (tests/e2e/disk_test.cpp does it that way).
       const auto fifo = scratch / "sandbox" / "twin-aegis" / "fifo";
       if (::mkfifo(fifo.c_str(), 0666) != 0) return false;
       // A reader, so that a file_write that opened the FIFO would write into it, not hang here.
       const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
       const auto o = e.run({.tool = "file_write", .args = {"fifo", "x"}, .twin_id = "twin-aegis"});
       char c = 0;
       const bool wrote = reader >= 0 && ::read(reader, &c, 1) == 1;
       if (reader >= 0) ::close(reader);
       return reader >= 0 && o && !o->ran && o->exit_code == exit_usage && !wrote;  // answered, never opened
     }},
    {"fill the workspace past its quota with file_write",
     [](const Executor& e, const std::filesystem::path& scratch) {
       auto spec = PolicySpec::seed_default();
       spec.twins["twin-quota"] = {.allow = {"file_write"}, .limits = {.workspace_bytes = 2ULL << 20}};
       const auto limited = e.with_policy(*Policy::make(spec));
       const std::string chunk(768ULL << 10, 'x');  // under the default request size limit
       int refused = 0;
       for (int i = 0; i < 4; ++i) {
         const auto o = limited.run({.tool = "file_write", .args = {"f" + std::to_string(i), chunk}, .twin_id = "twin-quota"});
         refused += o && o->limit_hit == LimitHit::workspace_quota ? 1 : 0;
       }
       std::uint64_t used = 0;
       for (const auto& entry : std::filesystem::recursive_directory_iterator(scratch / "sandbox" / "twin-quota")) {
         struct stat st{};
         if (::lstat(entry.path().c_str(), &st) == 0) used += static_cast<std::uint64_t>(st.st_blocks) * 512;
       }
       return refused == 2 && used <= (2ULL << 20);
     }},
    {"learn the workspace's host path (mountinfo, environment, working folder)",
     [](const Executor& e, const std::filesystem::path& scratch) {
       auto o = sh(e, "cat /proc/self/mountinfo; env; pwd");
       if (!o) return false;
       for (const auto& line : o->out.lines) {
         if (line.find(scratch.string()) != std::string::npos) return false;
       }
       return true;
     }},
    {"reach another run's listener on 127.0.0.1",
     [](const Executor& e, const std::filesystem::path& scratch) {
       return listener_and_thief(e, scratch).connect == "refused";
     }},
    {"reach another run's abstract unix socket",
     [](const Executor& e, const std::filesystem::path& scratch) {
       return listener_and_thief(e, scratch).unix_socket == "refused";
     }},
    {"take a share of another run's port with SO_REUSEPORT",
     [](const Executor& e, const std::filesystem::path& scratch) { return listener_and_thief(e, scratch).stolen == 0; }},
    {"read the server's command line or environment in /proc",
     [](const Executor& e, const std::filesystem::path& scratch) {
       // PID 1, the parent (a supervisor: a copy of the host, or the pagi-spawner program) and
       // every process the /proc it sees shows. Only the lines that give the server away are
       // printed: on a busy host all of them pass the output cap, and what is cut goes unseen.
       // Each pattern has one letter in brackets, so that it does not find the shell's own text.
       auto bracketed = scratch.string();
       bracketed.insert(bracketed.size() - 1, "[").push_back(']');
       auto o = sh(e, "for p in 1 $PPID /proc/[0-9]*; do p=${p#/proc/}; for f in cmdline environ; do "
                      "l=$(tr '\\0' ' ' < /proc/$p/$f); case \"$l\" in *isolation_tes[t]*|*PAGI_EXEC_PROBE_SECRE[T]*|*" +
                          bracketed + "*) echo \"$l\";; esac; done; done 2>/dev/null");
       if (!o) return false;
       for (const auto& line : o->out.lines) {
         if (line.find("isolation_test") != std::string::npos || line.find("PAGI_EXEC_PROBE_SECRET") != std::string::npos ||
             line.find(scratch.string()) != std::string::npos) {
           return false;
         }
       }
       return true;
     }},
    {"run a refused program hidden behind a NUL byte (\"/bin/rm\\0\")",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::ofstream(scratch / "victim") << "x";
       using namespace std::string_literals;
       auto o = e.run({.tool = "/bin/rm\0"s, .args = {(scratch / "victim").string()}, .twin_id = "twin-aegis"});
       auto line = e.run(test_support::shell("rm " + (scratch / "victim").string() + "\0 now"s));
       const auto not_run = [](const Result<Outcome>& r) { return r && !r->ran && r->exit_code == exit_usage; };
       return not_run(o) && not_run(line) && std::filesystem::exists(scratch / "victim");
     }},
    {"run a refused program through a shell granted by name (sh -c)",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::ofstream(scratch / "victim2") << "x";
       auto o = e.run({.tool = "/bin/sh", .args = {"-ec", "rm " + (scratch / "victim2").string()}, .twin_id = "twin-aegis"});
       return o && !o->decision.allowed && std::filesystem::exists(scratch / "victim2");
     }},
};

// What README claims each mode contains. A change here is a change of the documented guarantee.
// cwd and bwrap figures assume a server running as root (commands drop to an unprivileged uid)
// that can make cgroups (memory and process limits), as this test does.
const std::map<std::string, std::map<Isolation, bool>> claimed = {
    {"read /etc/shadow", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"read a file of the server outside the sandbox", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write outside the workspace", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write into a system folder (/usr)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"write outside through a symlink planted in the workspace", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"see or signal a host process (the test runner)", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"connect to a TCP port on the host's 127.0.0.1", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"read the server's environment variables", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"use a descriptor the server holds open", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"leave a daemon running after the command exits", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"outlive the time limit with a double-forked daemon", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"gain root through a setuid binary", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"mount a file system", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"create a nested user namespace", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"ptrace another process of the sandbox", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"use keyctl, bpf or perf_event_open", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"start 1000 processes (fork bomb)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"allocate 2 GiB of memory (memory bomb)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"fill the disk (write 1 GiB)", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write /proc/sys (kernel.core_pattern)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"run as host root", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"signal its own supervisor", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    // native: /workspace's line in mountinfo keeps the folder's path inside its file system (the
    // kernel prints a bind mount's root that way; README "Native isolation notes").
    {"learn the workspace's host path (mountinfo, environment, working folder)",
     {{Isolation::cwd, false}, {Isolation::bwrap, false}, {Isolation::native, false}}},
    {"reach another run's listener on 127.0.0.1", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"reach another run's abstract unix socket", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"take a share of another run's port with SO_REUSEPORT", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"read the server's command line or environment in /proc", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"hang a server thread: file_write into a FIFO in the workspace", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"fill the workspace past its quota with file_write", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"run a refused program hidden behind a NUL byte (\"/bin/rm\\0\")", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"run a refused program through a shell granted by name (sh -c)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
};

// The native sandbox claims every row that does not say otherwise.
bool claimed_contained(const std::string& probe, Isolation isolation) {
  const auto& row = claimed.at(probe);
  const auto it = row.find(isolation);
  return it != row.end() ? it->second : isolation == Isolation::native;
}

std::map<std::string, std::map<Isolation, bool>> results;

void run_probes(Isolation isolation) {
  TempDir scratch;
  const auto executor = test_support::make_executor(scratch.path() / "sandbox", isolation, std::chrono::seconds(60));
  for (const auto& probe : probes) {
    const std::string name = probe.name;
    CAPTURE(name);
    const std::string mode = to_string(isolation);
    CAPTURE(mode);
    const bool contained = probe.contained(executor, scratch.path());
    results[probe.name][isolation] = contained;
    CHECK(contained == claimed_contained(probe.name, isolation));
  }
}

}  // namespace

TEST_SUITE("isolation") {
  TEST_CASE("escape attempts in cwd mode") { run_probes(Isolation::cwd); }

  TEST_CASE("escape attempts in bwrap mode") {
    const char* bwrap = std::getenv("PAGI_EXEC_BWRAP");
    if (bwrap == nullptr || *bwrap == '\0') {
      test_support::skip_case("bubblewrap is not installed (apt-get install bubblewrap)");
      return;
    }
    auto sandbox = Sandbox::make({.root_dir = "/tmp", .isolation = Isolation::bwrap, .bwrap_path = bwrap});
    REQUIRE(sandbox);
    const auto works = check_isolation(*sandbox);
    REQUIRE_MESSAGE(works, "bwrap is installed but does not work here: " << works.error().message());
    run_probes(Isolation::bwrap);
  }

  TEST_CASE("escape attempts in native mode") {
    auto sandbox = Sandbox::make({.root_dir = "/tmp", .isolation = Isolation::native});
    REQUIRE(sandbox);
    const auto works = check_isolation(*sandbox);
    REQUIRE_MESSAGE(works, "the native sandbox does not work here: " << works.error().message());
    run_probes(Isolation::native);
  }

  TEST_CASE("write the isolation table when asked" *
            test_support::only_when_asked(std::getenv("PAGI_EXEC_ISOLATION_TABLE") == nullptr,
                                          "set PAGI_EXEC_ISOLATION_TABLE=<file> to write the README's table")) {
    std::ofstream table(std::getenv("PAGI_EXEC_ISOLATION_TABLE"));
    table << "| attempt | cwd | bwrap | native |\n|---|---|---|---|\n";
    const auto cell = [](const std::map<Isolation, bool>& row, Isolation i) {
      const auto it = row.find(i);
      return it == row.end() ? "not run" : it->second ? "blocked" : "**not blocked**";
    };
    for (const auto& probe : probes) {
      const auto& row = results[probe.name];
      table << "| " << probe.name << " | " << cell(row, Isolation::cwd) << " | " << cell(row, Isolation::bwrap) << " | "
            << cell(row, Isolation::native) << " |\n";
    }
    CHECK(table.good());
  }
}
