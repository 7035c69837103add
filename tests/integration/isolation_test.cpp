// SPDX-License-Identifier: Apache-2.0
// Escape attempts, run in every isolation mode. Each probe tries to break out; the test asserts
// what README's isolation table claims for each mode, and can write that table
// (PAGI_EXEC_ISOLATION_TABLE=<file>) from the results, so the README never claims more than runs.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

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
bool host_process_with_cmdline(const std::string& cmdline) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (test_support::read_file(entry.path() / "cmdline") == cmdline &&
        test_support::process_alive(std::stoi(name))) {
      return true;
    }
  }
  return false;
}

// A sleep duration no other test (or other run of this one) uses, to find the daemon by argv.
std::string daemon_marker(int probe) {
  return "1000." + std::to_string(::getpid()) + std::to_string(probe);
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
       (void)sh(e, "echo pwned > " + (scratch / "pwned").string());
       return !std::filesystem::exists(scratch / "pwned");
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
       auto o = sh(e, "kill -0 " + pid + " && tr '\\0' ' ' < /proc/" + pid + "/cmdline");
       return o && (o->exit_code != 0 || o->out.lines.empty() || o->out.lines[0].find("isolation_test") == std::string::npos);
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
       (void)sh(e, "(setsid sleep " + marker + " > /dev/null 2>&1 &) ; sleep 0.2");
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
    {"read the server's command line or environment in /proc",
     [](const Executor& e, const std::filesystem::path& scratch) {
       auto o = sh(e, "for p in 1 $PPID; do tr '\\0' ' ' < /proc/$p/cmdline; echo; tr '\\0' ' ' < /proc/$p/environ; echo; done 2>/dev/null");
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
       return !o && !line && std::filesystem::exists(scratch / "victim");
     }},
    {"run a refused program through a shell granted by name (sh -c)",
     [](const Executor& e, const std::filesystem::path& scratch) {
       std::ofstream(scratch / "victim2") << "x";
       auto o = e.run({.tool = "/bin/sh", .args = {"-ec", "rm " + (scratch / "victim2").string()}, .twin_id = "twin-aegis"});
       return o && !o->decision.allowed && std::filesystem::exists(scratch / "victim2");
     }},
};

// What README claims each mode contains. A change here is a change of the documented guarantee.
const std::map<std::string, std::map<Isolation, bool>> claimed = {
    {"read /etc/shadow", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"read a file of the server outside the sandbox", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write outside the workspace", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write into a system folder (/usr)", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"write outside through a symlink planted in the workspace", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"see or signal a host process (the test runner)", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"connect to a TCP port on the host's 127.0.0.1", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"read the server's environment variables", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"use a descriptor the server holds open", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"leave a daemon running after the command exits", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"outlive the time limit with a double-forked daemon", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"gain root through a setuid binary", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"mount a file system", {{Isolation::cwd, false}, {Isolation::bwrap, true}}},
    {"create a nested user namespace", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"ptrace another process of the sandbox", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"use keyctl, bpf or perf_event_open", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"start 1000 processes (fork bomb)", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"allocate 2 GiB of memory (memory bomb)", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"fill the disk (write 1 GiB)", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"read the server's command line or environment in /proc", {{Isolation::cwd, false}, {Isolation::bwrap, false}}},
    {"run a refused program hidden behind a NUL byte (\"/bin/rm\\0\")", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
    {"run a refused program through a shell granted by name (sh -c)", {{Isolation::cwd, true}, {Isolation::bwrap, true}}},
};

// The native sandbox claims every row.
bool claimed_contained(const std::string& probe, Isolation isolation) {
  return isolation == Isolation::native || claimed.at(probe).at(isolation);
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
      MESSAGE("SKIPPED bwrap probes: bubblewrap is not installed (apt-get install bubblewrap)");
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

  TEST_CASE("write the isolation table when asked" * doctest::skip(std::getenv("PAGI_EXEC_ISOLATION_TABLE") == nullptr)) {
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
