// SPDX-License-Identifier: Apache-2.0
// E2E fixture: starts the built tools-server in a clean environment and talks to it via the stub.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "test_support.hpp"
#include "tools.grpc.pb.h"

namespace e2e {

using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

/// The tools-server under test: $TOOLS_SERVER_BIN, set by tests/e2e/meson.build.
inline std::string server_binary() {
  const char* path = std::getenv("TOOLS_SERVER_BIN");
  if (path == nullptr || *path == '\0') throw std::runtime_error("TOOLS_SERVER_BIN is not set (run via meson test)");
  return path;
}

using test_support::TempDir;

/// Whole contents of a file, or "" when it cannot be read.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// A child process with a clean environment (only `env`), stdout on a pipe, stderr in a file.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const Env& env, std::filesystem::path stderr_path)
      : stderr_path_(std::move(stderr_path)) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    // A sanitized build's settings (scripts/sanitize.sh) reach the server too, so that a finding
    // there stops it and fails the test rather than being printed to its stderr file.
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
      const char* value = std::getenv(name);
      if (value != nullptr && !env.contains(name)) env_strings.push_back(std::string(name) + "=" + value);
    }
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    stdout_fd_ = out[0];
    if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed: " + std::to_string(rc));
  }
  ~Process() {
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    ::close(stdout_fd_);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// The first line the process printed on stdout, waiting at most `limit`; nullopt on EOF/time-out.
  std::optional<std::string> first_line(std::chrono::milliseconds limit = 10s) {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c = 0;
      if (::read(stdout_fd_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line += c;
    }
    return std::nullopt;
  }

  /// The exit code (128+N when killed by signal N), waiting at most `limit`; nullopt if still running.
  std::optional<int> wait_exit(std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!exit_code_) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (std::chrono::steady_clock::now() >= until) {
        break;
      } else {
        std::this_thread::sleep_for(10ms);
      }
    }
    return exit_code_;
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::string stderr_text() const { return read_text(stderr_path_); }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::filesystem::path stderr_path_;
  std::optional<int> exit_code_;
};

/// How to start a server: extra environment variables and flags on top of the defaults
/// (PATH, SANDBOX_DIR in a fresh temp folder, TOOLS_ISOLATION=cwd so that commands can leave
/// handshake files in the test's folders, --listen 127.0.0.1:0).
struct ServerOptions {
  Env env;
  std::vector<std::string> args;
  std::string listen = "127.0.0.1:0";
};

/// A running tools-server with a connected stub; killed (SIGKILL) on destruction if still up.
class Server {
 public:
  explicit Server(ServerOptions options = {}) {
    Env env{{"PATH", "/usr/bin:/bin"}, {"SANDBOX_DIR", sandbox_dir().string()}, {"TOOLS_ISOLATION", "cwd"}};
    for (const auto& [k, v] : options.env) {
      if (v.empty()) {
        env.erase(k);  // an empty value removes a default, e.g. to start with TOOLS_ISOLATION unset
      } else {
        env[k] = v;
      }
    }
    std::vector<std::string> argv{server_binary(), "--listen", options.listen};
    argv.insert(argv.end(), options.args.begin(), options.args.end());
    process_ = std::make_unique<Process>(argv, env, dir_.path() / "server.stderr");
    const auto line = process_->first_line();
    const std::string prefix = "listening on ";
    if (!line || line->rfind(prefix, 0) != 0) {
      process_->wait_exit(2s);
      throw std::runtime_error("server did not start; stdout: '" + line.value_or("") +
                               "'; stderr: " + process_->stderr_text());
    }
    address_ = line->substr(prefix.size());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = tools::ToolExecutorService::NewStub(channel_);
  }

  /// The address printed on the first stdout line ("127.0.0.1:40123", "unix:/...").
  [[nodiscard]] const std::string& address() const noexcept { return address_; }
  [[nodiscard]] tools::ToolExecutorService::Stub& stub() { return *stub_; }
  [[nodiscard]] Process& process() { return *process_; }
  /// A scratch folder of this test, outside the sandbox (pid files and the like). World-writable
  /// (sticky), as /tmp is: commands run as the sandbox's unprivileged uid write there.
  [[nodiscard]] std::filesystem::path scratch() const {
    const auto dir = dir_.path() / "scratch";
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::all | std::filesystem::perms::sticky_bit);
    return dir;
  }
  [[nodiscard]] std::filesystem::path sandbox_dir() const { return dir_.path() / "sandbox"; }

 private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tools::ToolExecutorService::Stub> stub_;
};

/// What one RequestExecution call returned.
struct Call {
  grpc::Status status;
  tools::ExecutionResponse response;
};

/// Calls RequestExecution; `context` lets a caller cancel from another thread.
inline Call execute(tools::ToolExecutorService::Stub& stub, const std::string& twin, const std::string& command,
                    const std::vector<std::string>& args = {}, std::chrono::milliseconds deadline = 20s,
                    grpc::ClientContext* context = nullptr) {
  tools::ExecutionRequest request;
  request.set_twin_id(twin);
  request.set_command(command);
  for (const auto& a : args) request.add_args(a);
  grpc::ClientContext local;
  grpc::ClientContext& ctx = context != nullptr ? *context : local;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  Call call;
  call.status = stub.RequestExecution(&ctx, request, &call.response);
  return call;
}

/// Starts the server binary expecting it to refuse to start: its exit code and stderr.
inline std::pair<std::optional<int>, std::string> run_expecting_exit(const Env& extra,
                                                                     const std::vector<std::string>& args = {},
                                                                     const std::string& listen = "127.0.0.1:0") {
  TempDir dir;
  Env env{{"PATH", "/usr/bin:/bin"}, {"SANDBOX_DIR", (dir.path() / "sandbox").string()}, {"TOOLS_ISOLATION", "cwd"}};
  for (const auto& [k, v] : extra) {
    if (v.empty()) {
      env.erase(k);  // an empty value removes a default, e.g. to start with TOOLS_ISOLATION unset
    } else {
      env[k] = v;
    }
  }
  std::vector<std::string> argv{server_binary(), "--listen", listen};
  argv.insert(argv.end(), args.begin(), args.end());
  Process process(argv, env, dir.path() / "stderr");
  const auto code = process.wait_exit(10s);
  return {code, process.stderr_text()};
}

/// True when `pid` no longer runs (gone, or a zombie waiting to be reaped).
// The server's HealthCheck answer; the call itself must succeed within 20 s (a server whose
// threads are all taken would fail it).
/// A unary call made from raw bytes (raw_unary).
struct RawAnswer {
  grpc::Status status;
  std::string reply;  // the response's bytes (unary)
};

// Waits for the next event of `cq`, which must be `tag`.
inline bool next(grpc::CompletionQueue& cq, void* tag) {
  void* got = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&got, &ok));
  REQUIRE(got == tag);
  return ok;
}

// Calls `method` with `bytes` as the request, as a client without tools.proto would.
inline RawAnswer raw_unary(Server& server, const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&context, "/tools.ToolExecutorService/" + method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  RawAnswer answer;
  call->Finish(&reply, &answer.status, &answer);
  next(cq, &answer);
  std::vector<grpc::Slice> slices;
  if (answer.status.ok() && reply.Dump(&slices).ok()) {
    for (const auto& s : slices) answer.reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return answer;
}

inline tools::HealthCheckResponse health(Server& server) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  tools::HealthCheckResponse response;
  const auto status = server.stub().HealthCheck(&context, google::protobuf::Empty(), &response);
  CAPTURE(status.error_message());
  REQUIRE(status.ok());
  return response;
}

inline bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  const auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] == 'Z';
}

/// Polls `predicate` every 20 ms for at most `limit`; true as soon as it holds.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

/// The lower-case hex SHA-256 of `text`, by the openssl CLI (a tokens file line's first field).
inline std::string sha256_hex(const std::string& text, const std::filesystem::path& scratch) {
  const auto in = scratch / "token.txt", out = scratch / "digest.txt";
  std::ofstream(in) << text;
  const auto command = "openssl dgst -sha256 -r " + in.string() + " | cut -d' ' -f1 > " + out.string();
  REQUIRE(std::system(command.c_str()) == 0);
  auto digest = read_text(out);
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == '*')) digest.pop_back();
  return digest;
}

/// The test PKI of make_certs.sh (a CA, a server, clients; another CA and its "intruder"), in `dir`.
inline std::filesystem::path make_certs(const std::filesystem::path& dir) {
  const auto script = std::filesystem::path(std::getenv("TOOLS_E2E_DIR")) / "make_certs.sh";
  REQUIRE(std::system(("bash " + script.string() + " " + dir.string()).c_str()) == 0);
  return dir;
}

/// A TLS channel trusting `ca`.crt that presents `client`'s certificate (none when empty).
inline std::shared_ptr<grpc::Channel> tls_channel(const std::string& address, const std::filesystem::path& certs,
                                                  const std::string& client = {}, const std::string& ca = "ca") {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = read_text(certs / (ca + ".crt"));
  if (!client.empty()) {
    options.pem_private_key = read_text(certs / (client + ".key"));
    options.pem_cert_chain = read_text(certs / (client + ".crt"));
  }
  return grpc::CreateChannel(address, grpc::SslCredentials(options));
}

/// The pid written into `file` by a command, once the file holds a whole line.
inline std::optional<pid_t> read_pid(const std::filesystem::path& file) {
  std::optional<pid_t> pid;
  eventually([&] {
    const auto text = read_text(file);
    if (text.empty() || text.back() != '\n') return false;
    pid = static_cast<pid_t>(std::stol(text));
    return true;
  });
  return pid;
}

}  // namespace e2e
