// SPDX-License-Identifier: Apache-2.0
// E2E, issue 14 item 3: hostile requests through the real server. Each gets a clear error, and
// afterwards the server is unharmed: HealthCheck answers, a normal execution runs, what was
// recorded before is still there, and the audit chain is intact. Cases request_test.cpp and
// fidelity_test.cpp already hold (NUL in command/args/twin_id/job_id, 1,025 arguments, 3.5 MiB
// requests, invalid UTF-8 in command/args/twin_id/metadata values) are not repeated here.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <mutex>

#include <grpcpp/generic/generic_stub.h>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::raw_unary;
using e2e::Server;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

// twin-aegis may run anything but the always-refused programs; "touch" and "rm" stand for harm:
// a refusal that failed would leave a marker or lose the victim file, nothing worse.
constexpr const char* policy_text = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot", "touch"]
[twins.twin-aegis]
allow = ["*"]
)";

struct Fixture {
  e2e::TempDir dir;
  std::filesystem::path audit = dir.path() / "audit.jsonl";
  std::unique_ptr<Server> server;
  std::string first_id;  // an execution recorded before anything hostile

  explicit Fixture(e2e::Env extra = {}) {
    std::ofstream(dir.path() / "policy.toml") << policy_text;
    e2e::Env env{{"TOOLS_POLICY_FILE", (dir.path() / "policy.toml").string()}, {"TOOLS_AUDIT_LOG", audit.string()}};
    for (auto& [k, v] : extra) env[k] = v;
    server = std::make_unique<Server>(e2e::ServerOptions{.env = env});
    const auto first = execute(server->stub(), "twin-aegis", "/usr/bin/printf", {"first"});
    REQUIRE(first.status.ok());
    REQUIRE(first.response.success());
    first_id = first.response.execution_id();
  }

  // The server after the hostile calls: still running, healthy, runs a normal command, still
  // holds the first execution, and its audit log is whole and chained.
  void check_unharmed() {
    CHECK_FALSE(server->process().wait_exit(0ms).has_value());
    CHECK(e2e::health(*server).status() == "healthy");
    const auto fine = execute(server->stub(), "twin-aegis", "/usr/bin/printf", {"ok"});
    REQUIRE_MESSAGE(fine.status.ok(), fine.status.error_message());
    CHECK(fine.response.success());
    REQUIRE(fine.response.stdout_logs_size() == 1);
    CHECK(fine.response.stdout_logs(0) == "ok");
    grpc::ClientContext context;
    tools::GetExecutionRequest get;
    get.set_execution_id(first_id);
    tools::ExecutionRecord record;
    REQUIRE(server->stub().GetExecution(&context, get, &record).ok());
    CHECK(record.stdout_logs_size() == 1);
    const auto log = pagi_exec::read_audit_log(audit, {});
    REQUIRE(log);
    CHECK(log->bad_lines == 0);
    CHECK(log->torn_lines == 0);
    CHECK(log->executions >= 2);
    const std::filesystem::path files[] = {audit};
    const auto chain = pagi_exec::verify_audit_chain(files);
    REQUIRE(chain);
    CHECK_MESSAGE(chain->intact, chain->problem);
  }
};

tools::ExecutionRequest make_request(const std::string& twin, const std::string& command,
                                     const std::vector<std::string>& args = {}) {
  tools::ExecutionRequest request;
  request.set_twin_id(twin);
  request.set_command(command);
  for (const auto& a : args) request.add_args(a);
  return request;
}

e2e::Call call(Server& server, const tools::ExecutionRequest& request, grpc::ClientContext* given = nullptr) {
  grpc::ClientContext local;
  grpc::ClientContext& context = given != nullptr ? *given : local;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  e2e::Call out;
  out.status = server.stub().RequestExecution(&context, request, &out.response);
  return out;
}

tools::PolicyDecision check(Server& server, const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  tools::PolicyDecision decision;
  const auto status = server.stub().CheckPolicy(&context, request, &decision);
  REQUIRE_MESSAGE(status.ok(), status.error_message());
  return decision;
}

// A protobuf field of wire type 2 (length-delimited): tag, length, bytes.
std::string field(int number, const std::string& bytes) {
  std::string out(1, static_cast<char>((number << 3) | 2));
  for (auto n = bytes.size(); ; n >>= 7) {
    out += static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    if (n <= 0x7f) break;
  }
  return out + bytes;
}

// A TCP forwarder between one client and the server, so that a test can cut the client off as a
// crashed client or a dead network does: both sockets reset (RST), no gRPC goodbye. After cut()
// it accepts no one, so the client's channel cannot reconnect through it.
class Proxy {
 public:
  explicit Proxy(const std::string& server_address) {
    const auto colon = server_address.rfind(':');
    target_.sin_family = AF_INET;
    target_.sin_port = htons(static_cast<std::uint16_t>(std::stoi(server_address.substr(colon + 1))));
    REQUIRE(::inet_pton(AF_INET, server_address.substr(0, colon).c_str(), &target_.sin_addr) == 1);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in any{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}, .sin_zero = {}};
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&any), sizeof any) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t length = sizeof any;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&any), &length) == 0);
    address_ = "127.0.0.1:" + std::to_string(ntohs(any.sin_port));
    REQUIRE(::pipe2(wake_, O_CLOEXEC) == 0);
    thread_ = std::thread([this] { loop(); });
  }
  ~Proxy() {
    cut();
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  [[nodiscard]] const std::string& address() const noexcept { return address_; }

  /// Resets every connection through the proxy and stops accepting; returns when done.
  void cut() {
    if (!thread_.joinable()) return;
    (void)::write(wake_[1], "x", 1);
    thread_.join();
  }

 private:
  void loop() {
    std::vector<std::pair<int, int>> links;  // client side, server side
    for (;;) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (const auto& [client, upstream] : links) {
        fds.push_back({client, POLLIN, 0});
        fds.push_back({upstream, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) break;
      const auto polled = links.size();  // a link accepted below has no entry in fds yet
      if (fds[1].revents != 0) {
        const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (client >= 0 && upstream >= 0 &&
            ::connect(upstream, reinterpret_cast<const sockaddr*>(&target_), sizeof target_) == 0) {
          links.emplace_back(client, upstream);
        } else {
          ::close(client);
          ::close(upstream);
        }
      }
      for (std::size_t i = 0; i < polled; ++i) {
        for (int side = 0; side < 2; ++side) {
          if (fds[2 + 2 * i + static_cast<std::size_t>(side)].revents == 0) continue;
          const int from = side == 0 ? links[i].first : links[i].second;
          const int to = side == 0 ? links[i].second : links[i].first;
          char buf[65536];
          const ssize_t n = ::read(from, buf, sizeof buf);
          for (ssize_t done = 0; n > 0 && done < n;) {
            const ssize_t w = ::write(to, buf + done, static_cast<std::size_t>(n - done));
            if (w <= 0) break;
            done += w;
          }
        }
      }
    }
    const linger reset{.l_onoff = 1, .l_linger = 0};
    for (const auto& [client, upstream] : links) {
      for (const int fd : {client, upstream}) {
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        ::close(fd);
      }
    }
    ::close(listen_fd_);
  }

  sockaddr_in target_{};
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::string address_;
  std::thread thread_;
};

// Live host processes running `sleep <marker>`: a command the server should have ended.
std::size_t sleepers(const std::string& marker) {
  return test_support::pids_with_cmdline("sleep"s + '\0' + marker + '\0').size();
}

// A sleep duration no other test uses, to find a command's processes from the host by argv.
std::string marker_for(int n) { return "1000." + std::to_string(::getpid()) + std::to_string(n); }

}  // namespace

TEST_SUITE("hostile_requests") {
  TEST_CASE("10,000 arguments and a 1 MiB argument are refused in-band, naming the limit") {
    Fixture f;
    const auto many = make_request("twin-aegis", "/usr/bin/true", std::vector<std::string>(10'000, "a"));
    const auto refused = call(*f.server, many);
    REQUIRE(refused.status.ok());
    CHECK(refused.response.exit_code() == 2);
    CHECK(refused.response.message() == "the request has 10000 args; at most 1024 are accepted (TOOLS_MAX_ARGS)");
    CHECK(check(*f.server, many).rule() == "invalid_request");

    const auto huge = make_request("twin-aegis", "/usr/bin/printf", {std::string(1 << 20, 'a')});
    const auto too_big = call(*f.server, huge);
    REQUIRE(too_big.status.ok());
    CHECK(too_big.response.exit_code() == 2);
    CHECK(too_big.response.message().find("TOOLS_MAX_REQUEST_BYTES") != std::string::npos);
    f.check_unharmed();
  }

  TEST_CASE("a 1 MiB argument within the request limit is one the kernel refuses: a clear answer, not a crash") {
    Fixture f(e2e::Env{{"TOOLS_MAX_REQUEST_BYTES", std::to_string(4 << 20)}});
    const auto answer = call(*f.server, make_request("twin-aegis", "/usr/bin/printf", {std::string(1 << 20, 'a')}));
    REQUIRE_MESSAGE(answer.status.ok(), answer.status.error_message());
    CHECK_FALSE(answer.response.success());
    MESSAGE("a 1 MiB argument past execve's 128 KiB: exit " << answer.response.exit_code() << ", "
                                                                << answer.response.message());
    CHECK(answer.response.exit_code() == 126);  // found, but it cannot be executed so
    CHECK(answer.response.message().find("Argument list too long") != std::string::npos);
    f.check_unharmed();
  }

  TEST_CASE("a 64 MiB message is refused by gRPC before any handler, and nothing is recorded") {
    Fixture f;
    const auto records_before = [&] {
      grpc::ClientContext context;
      tools::ListExecutionsResponse page;
      REQUIRE(f.server->stub().ListExecutions(&context, {}, &page).ok());
      return page.executions_size();
    }();
    const auto huge = make_request("twin-aegis", "/usr/bin/true", {std::string(64 << 20, 'a')});
    const auto answer = call(*f.server, huge);
    CHECK(answer.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CAPTURE(answer.status.error_message());
    grpc::ClientContext context;
    tools::PolicyDecision decision;
    CHECK(f.server->stub().CheckPolicy(&context, huge, &decision).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    grpc::ClientContext list_context;
    tools::ListExecutionsResponse page;
    REQUIRE(f.server->stub().ListExecutions(&list_context, {}, &page).ok());
    CHECK(page.executions_size() == records_before);
    f.check_unharmed();
  }

  TEST_CASE("NUL bytes in namespace and metadata are data: the request runs and the records keep them whole") {
    // They never reach a C string (command_test.cpp holds the library's side of this contract).
    Fixture f;
    auto request = make_request("twin-aegis", "/usr/bin/printf", {"ran"});
    request.set_namespace_("team\0x"s);
    (*request.mutable_metadata())["k\0x"s] = "v\0y"s;
    const auto answer = call(*f.server, request);
    REQUIRE(answer.status.ok());
    CHECK(answer.response.success());
    grpc::ClientContext context;
    tools::GetExecutionRequest get;
    get.set_execution_id(answer.response.execution_id());
    tools::ExecutionRecord record;
    REQUIRE(f.server->stub().GetExecution(&context, get, &record).ok());
    CHECK(record.namespace_() == "team\0x"s);
    const auto log = pagi_exec::read_audit_log(f.audit, {});
    REQUIRE(log);
    REQUIRE_FALSE(log->entries.empty());
    CHECK(log->entries.back().ns == "team\0x"s);
    f.check_unharmed();
  }

  TEST_CASE("invalid UTF-8 in job_id, namespace and a metadata key is INVALID_ARGUMENT naming the field") {
    Fixture f;
    const std::string valid = make_request("twin-aegis", "/usr/bin/true").SerializeAsString();
    struct Row {
      std::string bytes;
      const char* says;
    };
    const Row rows[] = {
        {valid + field(4, "job\xff"), "job_id is not valid UTF-8 (byte 0xff at offset 3)"},
        {valid + field(5, "\xc3("), "namespace is not valid UTF-8 (byte 0xc3 at offset 0)"},
        {valid + field(6, field(1, "\xfe") + field(2, "v")), "metadata key #0 is not valid UTF-8"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.says);
      for (const char* method : {"RequestExecution", "CheckPolicy"}) {
        const auto status = raw_unary(*f.server, method, row.bytes).status;
        CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
        CHECK(status.error_message().find(row.says) != std::string::npos);
      }
    }
    f.check_unharmed();
  }

  TEST_CASE("NUL bytes and invalid UTF-8 in the history calls' fields are refused naming the field; the server serves on") {
    Fixture f;
    // GetExecutionRequest.execution_id (1); ListExecutionsRequest twin_id (1), job_id (2),
    // outcome (3), page_token (5). A NUL byte is valid UTF-8: an id naming nothing, a filter
    // matching nothing, or an outcome or token refused with a reason.
    const auto missing = raw_unary(*f.server, "GetExecution", field(1, "x\0y"s)).status;
    CHECK(missing.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK_FALSE(missing.error_message().empty());
    for (const int number : {1, 2, 3, 5}) {
      CAPTURE(number);
      const auto list = raw_unary(*f.server, "ListExecutions", field(number, "x\0y"s)).status;
      if (!list.ok()) CHECK(list.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      if (!list.ok()) CHECK_FALSE(list.error_message().empty());
    }
    // Invalid UTF-8: the server reads these requests' bytes itself (as the execution calls'),
    // so the answer is INVALID_ARGUMENT naming the field, not grpc++'s INTERNAL with no message.
    const std::pair<int, const char*> list_fields[] = {{1, "twin_id"}, {2, "job_id"}, {3, "outcome"}, {5, "page_token"}};
    for (const auto& [number, name] : list_fields) {
      CAPTURE(name);
      const auto list = raw_unary(*f.server, "ListExecutions", field(number, "x\xffy"s)).status;
      CHECK(list.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(list.error_message().find(std::string(name) + " is not valid UTF-8 (byte 0xff at offset 1)") == 0);
    }
    const auto get = raw_unary(*f.server, "GetExecution", field(1, "x\xffy"s)).status;
    CHECK(get.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(get.error_message().find("execution_id is not valid UTF-8") == 0);
    // Bytes that are no protobuf at all: the same, naming the message.
    const auto junk = raw_unary(*f.server, "ListExecutions", "\xff\xff\xff"s).status;
    CHECK(junk.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(junk.error_message().find("not a valid tools.ListExecutionsRequest") != std::string::npos);
    f.check_unharmed();
  }

  TEST_CASE("path tricks in twin ids are refused and create nothing outside the sandbox folder") {
    Fixture f;
    const auto outside_before = std::distance(std::filesystem::directory_iterator(f.dir.path()), {});
    for (const std::string twin : {"../twin-aegis", "twin-aegis/..", "twin-aegis/../../escape", "..", ".", "/", "/tmp",
                                   "twin-aegis/", "./twin-aegis", "twin-aegis\\..\\x", "%2e%2e", "~root"}) {
      CAPTURE(twin);
      const auto answer = call(*f.server, make_request(twin, "/usr/bin/true"));
      REQUIRE(answer.status.ok());
      CHECK_FALSE(answer.response.success());
      CHECK_FALSE(answer.response.message().empty());
      CHECK_FALSE(check(*f.server, make_request(twin, "/usr/bin/true")).allowed());
      const auto written = call(*f.server, make_request(twin, "file_write", {"x", "y"}));
      REQUIRE(written.status.ok());
      CHECK_FALSE(written.response.success());
    }
    // Only twin-aegis's own workspace is in the sandbox folder; nothing new beside it.
    std::vector<std::string> in_sandbox;
    for (const auto& entry : std::filesystem::directory_iterator(f.server->sandbox_dir())) {
      if (entry.is_directory()) in_sandbox.push_back(entry.path().filename().string());
    }
    CHECK(std::count(in_sandbox.begin(), in_sandbox.end(), "twin-aegis") == 1);
    for (const auto& name : in_sandbox) CHECK(name.find("..") == std::string::npos);
    CHECK(std::distance(std::filesystem::directory_iterator(f.dir.path()), {}) == outside_before);
    CHECK_FALSE(std::filesystem::exists(f.dir.path() / "escape"));
    f.check_unharmed();
  }

  TEST_CASE("path tricks in commands still name the refused program") {
    Fixture f;
    const auto victim = f.dir.path() / "victim";
    std::ofstream(victim) << "still here";
    // Spellings of /bin/rm: refused by the policy as rm, by the dry run and by the run alike.
    for (const std::string command : {"/usr/bin/../bin/rm", "/bin/./rm", "//bin//rm", "/usr/bin/../../bin/rm",
                                      "/bin/rm/", "/usr/./bin/rm"}) {
      CAPTURE(command);
      const auto request = make_request("twin-aegis", command, {"-f", victim.string()});
      const auto answer = call(*f.server, request);
      REQUIRE(answer.status.ok());
      CHECK_FALSE(answer.response.success());
      CAPTURE(answer.response.message());
      const auto decision = check(*f.server, request);
      CHECK_FALSE(decision.allowed());
      CHECK(answer.response.policy_rule() == decision.rule());
    }
    // Relative spellings name no program of the host: the workspace holds none by that name.
    for (const std::string command : {"../../../../../../bin/rm", "./rm", "rm/", "bin/rm"}) {
      CAPTURE(command);
      const auto answer = call(*f.server, make_request("twin-aegis", command, {"-f", victim.string()}));
      REQUIRE(answer.status.ok());
      CHECK_FALSE(answer.response.success());
      CAPTURE(answer.response.message());
      CHECK_FALSE(answer.response.message().empty());
    }
    CHECK(e2e::read_text(victim) == "still here");
    f.check_unharmed();
  }

  TEST_CASE("5,000 metadata entries in a request, and 1,000 gRPC headers on a call") {
    Fixture f;
    auto request = make_request("twin-aegis", "/usr/bin/printf", {"many"});
    for (int i = 0; i < 5000; ++i) (*request.mutable_metadata())["key-" + std::to_string(i)] = "value";
    const auto answer = call(*f.server, request);
    REQUIRE_MESSAGE(answer.status.ok(), answer.status.error_message());
    CAPTURE(answer.response.message());
    CHECK((answer.response.success() || answer.response.exit_code() == 2));
    // The headers come on a connection of their own (grpc would otherwise share one between
    // channels): refusing them, grpc may close the connection they came on.
    grpc::ChannelArguments own_connection;
    own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const auto stub = tools::ToolExecutorService::NewStub(
        grpc::CreateCustomChannel(f.server->address(), grpc::InsecureChannelCredentials(), own_connection));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    for (int i = 0; i < 1000; ++i) context.AddMetadata("x-hostile-" + std::to_string(i), "value");
    tools::ExecutionResponse response;
    const auto headers = stub->RequestExecution(&context, make_request("twin-aegis", "/usr/bin/true"), &response);
    CAPTURE(headers.error_message());
    // Refused either way: the server's RESOURCE_EXHAUSTED reaches the client, or the server
    // closes the connection while the client still writes the headers (UNAVAILABLE, "Broken
    // pipe"), which of the two is a race between them.
    CHECK((headers.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
           headers.error_code() == grpc::StatusCode::UNAVAILABLE));
    f.check_unharmed();
  }

  TEST_CASE("a client that opens 1,000 streams and never reads, then vanishes, leaves the server whole") {
    Fixture f({{"TOOLS_MAX_CONCURRENCY", "32"}, {"TOOLS_MAX_CONCURRENCY_PER_TWIN", "32"}, {"TOOLS_MEMORY_BUDGET_MB", "0"},
               {"TOOLS_EXEC_TIMEOUT_MS", "600000"}});
    const auto marker = marker_for(1);
    Proxy proxy(f.server->address());
    {
      auto channel = grpc::CreateChannel(proxy.address(), grpc::InsecureChannelCredentials());
      auto stub = tools::ToolExecutorService::NewStub(channel);
      grpc::CompletionQueue cq;
      std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
      std::vector<std::unique_ptr<grpc::ClientAsyncReader<tools::ExecutionEvent>>> readers;
      // Each starts a sleep (seen from the host) and writes far more than the flow-control windows
      // hold: never read, it blocks.
      const auto request = make_request("twin-aegis", "command_exec",
                                        {"sleep " + marker + " & head -c 4194304 /dev/zero; wait"});
      for (int i = 0; i < 1000; ++i) {  // no reads are ever asked for
        contexts.push_back(std::make_unique<grpc::ClientContext>());
        readers.push_back(stub->PrepareAsyncStreamExecution(contexts.back().get(), request, &cq));
        readers.back()->StartCall(reinterpret_cast<void*>(static_cast<std::intptr_t>(i)));
      }
      // As many run as the server admits (32); it refuses the rest at once.
      CHECK(e2e::eventually([&] { return sleepers(marker) == 32; }, 60s));
      // The server, meanwhile, answers others: health, the dry run, and a clear "busy".
      CHECK(e2e::health(*f.server).status() == "healthy");
      CHECK(check(*f.server, make_request("twin-aegis", "/usr/bin/true")).allowed());
      const auto busy = execute(f.server->stub(), "twin-aegis", "/usr/bin/true");
      CAPTURE(busy.status.error_message());
      CHECK((busy.status.ok() || busy.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED));
      proxy.cut();  // the client vanishes without reading a byte
      for (auto& context : contexts) context->TryCancel();
      cq.Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (cq.Next(&tag, &ok)) {
      }
    }
    // Every command the vanished client started is ended by the server.
    CHECK(e2e::eventually([&] { return sleepers(marker) == 0; }, 60s));
    CHECK(e2e::eventually([&] { return execute(f.server->stub(), "twin-aegis", "/usr/bin/true").response.success(); }, 60s));
    f.check_unharmed();
  }

  TEST_CASE("a client that stays connected and never reads its streams holds no slot past the time limit + 2 s") {
    // Two slots in all, a 2 s time limit: the stalled streams take both, and must give them back
    // while their client is still there (it only stopped reading).
    Fixture f({{"TOOLS_MAX_CONCURRENCY", "2"}, {"TOOLS_MAX_CONCURRENCY_PER_TWIN", "2"}, {"TOOLS_MEMORY_BUDGET_MB", "0"},
               {"TOOLS_EXEC_TIMEOUT_MS", "2000"}});
    const auto marker = marker_for(3);
    grpc::ChannelArguments own_connection;  // not the connection the checks below use
    own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const auto stub = tools::ToolExecutorService::NewStub(
        grpc::CreateCustomChannel(f.server->address(), grpc::InsecureChannelCredentials(), own_connection));
    grpc::CompletionQueue cq;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientAsyncReader<tools::ExecutionEvent>>> readers;
    // Far more output than the flow-control windows and the server's queue hold: unread, it blocks.
    const auto request = make_request("twin-aegis", "command_exec", {"sleep " + marker + " & yes; wait"});
    for (int i = 0; i < 2; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      // Far past the test's own bounds: only keeps a broken server from hanging the test.
      contexts.back()->set_deadline(std::chrono::system_clock::now() + 180s);
      readers.push_back(stub->PrepareAsyncStreamExecution(contexts.back().get(), request, &cq));
      readers.back()->StartCall(reinterpret_cast<void*>(static_cast<std::intptr_t>(i)));
    }
    void* tag = nullptr;
    bool ok = false;
    for (std::size_t started = 0; started < readers.size(); ++started) REQUIRE(cq.Next(&tag, &ok));
    REQUIRE(e2e::eventually([&] { return sleepers(marker) == 2; }, 60s));  // both run, both slots held
    // Without a bound on the wait for the client, both slots stay taken for as long as it stays.
    CHECK(e2e::eventually([&] { return execute(f.server->stub(), "twin-aegis", "/usr/bin/true").response.success(); },
                          60s));
    CHECK(sleepers(marker) == 0);
    // The server ended both calls itself: this client now reads what had reached it, then the
    // stream ends, CANCELLED. (grpc gives a client the status only after the messages before it.)
    for (auto& reader : readers) {
      tools::ExecutionEvent event;
      std::size_t events = 0;
      for (ok = true; ok; ++events) {
        reader->Read(&event, &event);
        REQUIRE(cq.Next(&tag, &ok));
      }
      grpc::Status status;
      reader->Finish(&status, &status);
      REQUIRE(cq.Next(&tag, &ok));
      CAPTURE(events);
      CAPTURE(status.error_message());
      CHECK(status.error_code() == grpc::StatusCode::CANCELLED);
    }
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    f.check_unharmed();
  }

  TEST_CASE("a client that disconnects mid-run: the tree is killed and the execution is recorded") {
    Fixture f(e2e::Env{{"TOOLS_EXEC_TIMEOUT_MS", "600000"}});
    const auto marker = marker_for(2);
    const auto pid_file = f.server->scratch() / "pid";
    Proxy proxy(f.server->address());
    auto channel = grpc::CreateChannel(proxy.address(), grpc::InsecureChannelCredentials());
    auto stub = tools::ToolExecutorService::NewStub(channel);
    grpc::CompletionQueue cq;
    grpc::ClientContext context;
    const auto request = make_request("twin-aegis", "command_exec",
                                      {"sleep " + marker + " & echo $! > " + pid_file.string() + "; wait"});
    auto reader = stub->PrepareAsyncRequestExecution(&context, request, &cq);
    reader->StartCall();
    tools::ExecutionResponse response;
    grpc::Status status;
    reader->Finish(&response, &status, reinterpret_cast<void*>(1));
    // The command runs once its pid is written (the bound only keeps a broken build from hanging).
    std::optional<pid_t> pid;
    e2e::eventually([&] {
      const auto text = e2e::read_text(pid_file);
      if (text.empty() || text.back() != '\n') return false;
      pid = static_cast<pid_t>(std::stol(text));
      return true;
    }, 120s);
    REQUIRE(pid);
    proxy.cut();
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    CHECK_FALSE(status.ok());  // this client's side: the connection is gone
    CHECK(test_support::wait_gone(*pid));
    CHECK(sleepers(marker) == 0);
    // The server's side: the execution is in the history, cancelled, and in the audit log.
    CHECK(e2e::eventually([&] {
      grpc::ClientContext list_context;
      tools::ListExecutionsResponse page;
      if (!f.server->stub().ListExecutions(&list_context, {}, &page).ok()) return false;
      for (const auto& record : page.executions()) {
        if (record.execution_id() != f.first_id && !record.finished_at().empty()) return true;
      }
      return false;
    }));
    f.check_unharmed();
  }
}
