// SPDX-License-Identifier: Apache-2.0
// Escape attempts, run in every isolation mode. Each probe tries to break out; the test asserts
// what README's isolation table claims for each mode, and can write that table
// (PAGI_EXEC_ISOLATION_TABLE=<file>) from the results, so the README never claims more than runs.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

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

struct Probe {
  const char* name;   // what the attempt tries, as the README table shows it
  bool (*contained)(const Executor&, const std::filesystem::path& scratch);
};

Result<Outcome> sh(const Executor& executor, const std::string& line) { return executor.run(test_support::shell(line)); }

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
       (void)sh(e, "(setsid sleep 1001.25 > /dev/null 2>&1 &) ; sleep 0.2");
       return !host_process_with_cmdline(std::string("sleep\0" "1001.25\0", 14));
     }},
    {"outlive the time limit with a double-forked daemon",
     [](const Executor& e, const std::filesystem::path&) {
       (void)sh(e, "(setsid sh -c 'trap \"\" TERM; exec sleep 1001.5' &) ; sleep 1000");
       return !host_process_with_cmdline(std::string("sleep\0" "1001.5\0", 13));
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
};

std::map<std::string, std::map<Isolation, bool>> results;

void run_probes(Isolation isolation) {
  TempDir scratch;
  const auto executor = test_support::make_executor(scratch.path() / "sandbox", isolation, std::chrono::milliseconds(1500));
  for (const auto& probe : probes) {
    CAPTURE(probe.name);
    const bool contained = probe.contained(executor, scratch.path());
    results[probe.name][isolation] = contained;
    CHECK(contained == claimed.at(probe.name).at(isolation));
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

  TEST_CASE("write the isolation table when asked" * doctest::skip(std::getenv("PAGI_EXEC_ISOLATION_TABLE") == nullptr)) {
    std::ofstream table(std::getenv("PAGI_EXEC_ISOLATION_TABLE"));
    table << "| attempt | cwd | bwrap |\n|---|---|---|\n";
    const auto cell = [](const std::map<Isolation, bool>& row, Isolation i) {
      const auto it = row.find(i);
      return it == row.end() ? "not run" : it->second ? "blocked" : "**not blocked**";
    };
    for (const auto& probe : probes) {
      const auto& row = results[probe.name];
      table << "| " << probe.name << " | " << cell(row, Isolation::cwd) << " | " << cell(row, Isolation::bwrap) << " |\n";
    }
    CHECK(table.good());
  }
}
