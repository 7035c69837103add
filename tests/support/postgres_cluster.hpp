// SPDX-License-Identifier: Apache-2.0
// A throw-away PostgreSQL for tests: initdb in a temporary folder, postgres run as `nobody` on a
// loopback port and a unix socket there, stopped and removed at scope exit.
#pragma once

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace test_support {

/// Debian's PostgreSQL server binaries (the newest /usr/lib/postgresql/N/bin with initdb and
/// postgres), or $PAGI_EXEC_PG_BINDIR; empty when there are none.
inline std::filesystem::path postgres_bin_dir() {
  if (const char* dir = std::getenv("PAGI_EXEC_PG_BINDIR"); dir != nullptr && *dir != '\0') return dir;
  std::error_code ec;
  std::vector<std::pair<int, std::filesystem::path>> found;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = entry.path() / "bin";
    if (!std::filesystem::exists(bin / "initdb", ec) || !std::filesystem::exists(bin / "postgres", ec)) continue;
    try {
      found.emplace_back(std::stoi(entry.path().filename().string()), bin);
    } catch (const std::exception&) {
      continue;  // not a version folder
    }
  }
  if (found.empty()) return {};
  return std::max_element(found.begin(), found.end())->second;
}

/// Why a PostgreSQL cannot be started here, or "" when it can be tried.
inline std::string postgres_unavailable() {
  const auto bin = postgres_bin_dir();
  std::error_code ec;
  if (bin.empty() || !std::filesystem::exists(bin / "postgres", ec)) {
    return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres or $PAGI_EXEC_PG_BINDIR; apt-get "
           "install postgresql, see scripts/install-deps.sh)";
  }
  if (::geteuid() == 0 && ::getpwnam("nobody") == nullptr) return "running as root and there is no user 'nobody'";
  return "";
}

struct PostgresOptions {
  /// false: fsync off (fast tests; a crash of postgres itself is never tested). true: as a
  /// production server writes (for measured latencies).
  bool durable = false;
};

/// One postgres server with a superuser `pagi` trusted on loopback. Throws std::runtime_error with
/// the server's log when it cannot start; the destructor stops it (fast shutdown) and removes its
/// folder, also when a test fails. postgres dies with the test process (PR_SET_PDEATHSIG).
class PostgresCluster {
 public:
  explicit PostgresCluster(PostgresOptions options = {})
      : options_(options), bin_(postgres_bin_dir()), home_(dir_.path() / "pg") {
    std::filesystem::create_directories(home_);
    if (::geteuid() == 0) {
      const passwd* nobody = ::getpwnam("nobody");
      if (nobody == nullptr) throw std::runtime_error("no user 'nobody' to run postgres as");
      uid_ = nobody->pw_uid;
      gid_ = nobody->pw_gid;
      if (::chown(home_.c_str(), uid_, gid_) != 0) throw std::runtime_error("chown " + home_.string());
    }
    ::chmod(home_.c_str(), 0700);
    const auto log = home_ / "initdb.log";
    const int status = wait_for(spawn({(bin_ / "initdb").string(), "-D", (home_ / "data").string(), "-U", "pagi",
                                       "--auth=trust", "--encoding=UTF8", "--no-sync"},
                                      log));
    if (status != 0) throw std::runtime_error("initdb failed: " + read_file(log));
    // A free port can be taken between our probe and postgres' bind: try again with another.
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) start(options, free_loopback_port());
    if (pid_ < 0) throw std::runtime_error("postgres did not start: " + read_file(home_ / "postgres.log"));
  }
  ~PostgresCluster() { stop(); }
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// A libpq URI to `database` over loopback TCP.
  [[nodiscard]] std::string uri(const std::string& database = "postgres") const {
    return "postgresql://pagi@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }
  /// Creates an empty database (createdb); throws when it cannot.
  void create_database(const std::string& name) const {
    const auto ran = run_program({(bin_ / "createdb").string(), "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
                                  "pagi", name},
                                 true);
    if (ran.status != 0) throw std::runtime_error("createdb " + name + ": " + ran.out);
  }
  /// Runs one SQL statement in `database` with psql; throws when it fails.
  void sql(const std::string& database, const std::string& statement) const {
    const auto ran = run_program({(bin_ / "psql").string(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                  "-p", std::to_string(port_), "-U", "pagi", "-d", database, "-c", statement},
                                 true);
    if (ran.status != 0) throw std::runtime_error("psql: " + statement + ": " + ran.out);
  }
  /// Ends every session on `database`, as a restart of the server would for its clients.
  void terminate_sessions(const std::string& database) const {
    sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database + "'");
  }
  /// Starts the stopped server again on the same port and data; throws when it does not start.
  void restart() {
    stop();
    start(options_, port_);
    if (pid_ < 0) throw std::runtime_error("postgres did not start again: " + read_file(home_ / "postgres.log"));
  }
  /// Stops the server (fast shutdown: sessions are ended) and waits for it.
  void stop() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGINT);
    int status = 0;
    for (int i = 0; i < 1000 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (::kill(pid_, 0) == 0 && ::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

 private:
  static std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  static int free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("no free loopback port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
  }

  void start(const PostgresOptions& options, int port) {
    port_ = port;
    const auto log = home_ / "postgres.log";
    const pid_t pid = spawn({(bin_ / "postgres").string(), "-D", (home_ / "data").string(), "-p", std::to_string(port_),
                             "-k", home_.string(), "-c", "listen_addresses=127.0.0.1", "-c",
                             std::string("fsync=") + (options.durable ? "on" : "off")},
                            log);
    // Ready when it answers a connection attempt (pg_isready), not after a fixed sleep; the bound
    // only keeps a broken server from hanging the test.
    for (int i = 0; i < 3000; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return;  // it gave up (port taken?): try another
      const auto ready = run_program({(bin_ / "pg_isready").string(), "-q", "-h", "127.0.0.1", "-p",
                                      std::to_string(port_), "-U", "pagi"});
      if (ready.status == 0) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  // Runs argv as the unprivileged user, stdout and stderr appended to `log`. The child allocates
  // nothing after fork: everything it needs is built first.
  pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) const {
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("open " + log.string());
    const bool drop = ::geteuid() == 0;
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
      if (drop && (::setgroups(0, nullptr) != 0 || ::setresgid(gid_, gid_, gid_) != 0 ||
                   ::setresuid(uid_, uid_, uid_) != 0)) {
        ::_exit(126);
      }
      // After the uid change, which clears it (see prctl(2)): postgres dies with the test.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(125);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      if (::chdir(home_.c_str()) != 0) ::_exit(126);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out);
    return pid;
  }

  static int wait_for(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  TempDir dir_;
  PostgresOptions options_;
  std::filesystem::path bin_;
  std::filesystem::path home_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace test_support
