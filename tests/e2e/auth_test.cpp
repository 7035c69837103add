// SPDX-License-Identifier: Apache-2.0
// E2E: twins that prove who they are. Bearer tokens and mutual TLS, with certificates made by
// openssl at test time, and the impersonation attempts that must fail.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

#include <grpcpp/generic/generic_stub.h>

#include "server_fixture.hpp"

using e2e::Server;
using e2e::make_certs;
using e2e::sha256_hex;
using e2e::tls_channel;

namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Answer {
  grpc::Status status;
  tools::ExecutionResponse response;
};

Answer call(const std::shared_ptr<grpc::Channel>& channel, const std::string& twin, const std::string& command,
            const std::string& token = {}) {
  auto stub = tools::ToolExecutorService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  tools::ExecutionRequest request;
  request.set_command(command);
  request.set_twin_id(twin);
  Answer answer;
  answer.status = stub->RequestExecution(&context, request, &answer.response);
  return answer;
}

// A server that knows one token, "trace-secret" for twin-trace (its file in `dir`), and keeps
// its audit log in `audit`.
e2e::ServerOptions auditing_token_server(const e2e::TempDir& dir, const std::filesystem::path& audit) {
  const auto tokens = dir.path() / "tokens";
  std::ofstream(tokens) << sha256_hex("trace-secret", dir.path()) << " twin-trace\n";
  return {.env = {{"TOOLS_AUTH", "token"}, {"TOOLS_AUTH_TOKENS_FILE", tokens.string()},
                  {"TOOLS_AUDIT_LOG", audit.string()}}};
}

}  // namespace

TEST_SUITE("auth") {
  TEST_CASE("token: a twin proves itself with a bearer token; impersonation and bad tokens run nothing") {
    e2e::TempDir dir;
    const auto tokens = dir.path() / "tokens";
    std::ofstream(tokens) << "# sha256(token) twin\n"
                          << sha256_hex("trace-secret", dir.path()) << " twin-trace\n"
                          << sha256_hex("aegis-secret", dir.path()) << " twin-aegis  # the orchestrator\n";
    Server server({.env = {{"TOOLS_AUTH", "token"}, {"TOOLS_AUTH_TOKENS_FILE", tokens.string()}}});
    const auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());

    SUBCASE("the proven twin runs what it may, and an empty twin_id takes it") {
      CHECK(call(channel, "twin-aegis", "true", "aegis-secret").response.success());
      const auto as_trace = call(channel, "", "echo", "trace-secret");
      REQUIRE(as_trace.status.ok());
      CHECK_FALSE(as_trace.response.success());  // twin-trace may not run echo: an in-band refusal
      CHECK(as_trace.response.message().find("twin-trace") != std::string::npos);
    }
    SUBCASE("bytes that do not parse: UNAUTHENTICATED without a token, INVALID_ARGUMENT with one") {
      const auto raw = [&](const std::string& token) {
        grpc::GenericStub stub(channel);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
        grpc::Slice slice(std::string("\x0a\x02\xff\xfe"));  // command: invalid UTF-8
        grpc::CompletionQueue cq;
        auto rpc = stub.PrepareUnaryCall(&context, "/tools.ToolExecutorService/RequestExecution",
                                         grpc::ByteBuffer(&slice, 1), &cq);
        rpc->StartCall();
        grpc::ByteBuffer reply;
        grpc::Status status;
        rpc->Finish(&reply, &status, &status);
        void* tag = nullptr;
        bool ok = false;
        REQUIRE(cq.Next(&tag, &ok));
        return status;
      };
      CHECK(raw("").error_code() == grpc::StatusCode::UNAUTHENTICATED);  // a stranger learns nothing
      const auto known = raw("aegis-secret");
      CHECK(known.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(known.error_message().rfind("command is not valid UTF-8", 0) == 0);
    }
    SUBCASE("a twin-trace token claiming twin-aegis is refused") {
      const auto forged = call(channel, "twin-aegis", "true", "trace-secret");
      CHECK(forged.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    }
    SUBCASE("no token, a revoked or unknown token, a malformed header: UNAUTHENTICATED") {
      CHECK(call(channel, "twin-aegis", "true").status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
      CHECK(call(channel, "twin-aegis", "true", "revoked-secret").status.error_code() ==
            grpc::StatusCode::UNAUTHENTICATED);
      auto stub = tools::ToolExecutorService::NewStub(channel);
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Basic aegis-secret");
      tools::ExecutionRequest request;
      request.set_command("true");
      tools::ExecutionResponse response;
      CHECK(stub->RequestExecution(&context, request, &response).error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
    SUBCASE("history shows a twin its own executions only") {
      REQUIRE(call(channel, "twin-aegis", "true", "aegis-secret").status.ok());
      auto stub = tools::ToolExecutorService::NewStub(channel);
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer trace-secret");
      tools::ListExecutionsRequest list;
      tools::ListExecutionsResponse page;
      REQUIRE(stub->ListExecutions(&context, list, &page).ok());
      for (const auto& record : page.executions()) CHECK(record.twin_id() == "twin-trace");
    }
  }

  TEST_CASE("token: every rejected credential is one log line (never the token) and one audit record") {
    e2e::TempDir dir;
    const auto audit = dir.path() / "audit.jsonl";
    Server server(auditing_token_server(dir, audit));
    const auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
    // Three attempts: a guessed token, no token, a real token claiming another twin.
    REQUIRE(call(channel, "twin-aegis", "true", "guessed-secret-4711").status.error_code() ==
            grpc::StatusCode::UNAUTHENTICATED);
    REQUIRE(call(channel, "twin-aegis", "true").status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    REQUIRE(call(channel, "twin-aegis", "true", "trace-secret").status.error_code() ==
            grpc::StatusCode::PERMISSION_DENIED);
    {
      auto stub = tools::ToolExecutorService::NewStub(channel);
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer guessed-secret-4712");
      tools::ListExecutionsRequest list;
      tools::ListExecutionsResponse page;
      REQUIRE(stub->ListExecutions(&context, list, &page).error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
    const auto log = server.process().stderr_text();
    CAPTURE(log);
    std::size_t lines = 0;
    for (std::size_t at = log.find("auth_rejected rpc="); at != std::string::npos; at = log.find("auth_rejected rpc=", at + 1)) {
      ++lines;
    }
    CHECK(lines == 4);
    CHECK(log.find("auth_rejected rpc=RequestExecution peer=\"ipv4:127.0.0.1:") != std::string::npos);
    CHECK(log.find("status=PERMISSION_DENIED") != std::string::npos);
    CHECK(log.find("auth_rejected rpc=ListExecutions") != std::string::npos);
    CHECK(log.find("guessed-secret") == std::string::npos);  // no credential in the log
    CHECK(log.find("trace-secret") == std::string::npos);
    const auto records = slurp(audit);
    CAPTURE(records);
    CHECK(records.find("guessed-secret") == std::string::npos);  // nor in the audit log
    CHECK(records.find("trace-secret") == std::string::npos);
    const auto report = pagi_exec::read_audit_log(audit, {.outcome = "auth_rejected"});
    REQUIRE(report);
    CHECK(report->auth_rejected == 4);
    REQUIRE(report->entries.size() == 4);
    CHECK(report->entries[0].twin_id == "twin-aegis");  // as claimed
    CHECK(report->entries[0].rpc == "RequestExecution");
    CHECK(report->entries[0].peer.find("127.0.0.1") != std::string::npos);
    CHECK(report->entries[0].reason.find("UNAUTHENTICATED") == 0);
    CHECK(report->entries[2].reason.find("PERMISSION_DENIED") == 0);
    const auto everything = pagi_exec::read_audit_log(audit, {});
    REQUIRE(everything);
    CHECK(everything->decisions == 0);  // nothing was decided, let alone run
    CHECK(everything->entries.size() == 4);
  }

  TEST_CASE("token: a flood of rejected credentials is recorded at a bounded rate, and every one is accounted for") {
    e2e::TempDir dir;
    const auto audit = dir.path() / "audit.jsonl";
    Server server(auditing_token_server(dir, audit));
    const auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
    // 1,000 calls with no credential, from 4 threads: far past 100 at once and 20 a second.
    std::atomic<int> refused{0};
    std::vector<std::thread> flood;
    for (int t = 0; t < 4; ++t) {
      flood.emplace_back([&] {
        for (int i = 0; i < 250; ++i) {
          if (call(channel, "twin-aegis", "true").status.error_code() == grpc::StatusCode::UNAUTHENTICATED) ++refused;
        }
      });
    }
    for (auto& t : flood) t.join();
    REQUIRE(refused == 1000);
    // Then one more at a time until one is recorded with the count of those that were not.
    const auto unrecorded_total = [&] {
      std::uint64_t lines = 0;
      std::uint64_t unrecorded = 0;
      const auto log = server.process().stderr_text();
      for (auto at = log.find("auth_rejected rpc="); at != std::string::npos; at = log.find("auth_rejected rpc=", at + 1)) {
        ++lines;
        const auto field = log.find("unrecorded_before=", at);
        REQUIRE(field != std::string::npos);
        unrecorded += std::stoull(log.substr(field + 18));
      }
      return std::pair{lines, unrecorded};
    };
    int sent = 1000;
    REQUIRE(e2e::eventually([&] {
      ++sent;
      (void)call(channel, "twin-aegis", "true");
      return unrecorded_total().second > 0 && unrecorded_total().first + unrecorded_total().second ==
                                                  static_cast<std::uint64_t>(sent);
    }, std::chrono::seconds(30)));
    const auto [lines, unrecorded] = unrecorded_total();
    CAPTURE(lines);
    CAPTURE(unrecorded);
    CHECK(lines < 1000);  // the flood was not written line by line
    // The audit log holds exactly the recorded ones, the last saying how many were not.
    const auto report = pagi_exec::read_audit_log(audit, {.outcome = "auth_rejected"});
    REQUIRE(report);
    CHECK(report->auth_rejected == lines);
    CHECK(slurp(audit).find("rejections since the last one recorded, not recorded one by one") != std::string::npos);
    // The server still answers a real twin at once.
    CHECK(call(channel, "twin-trace", "true", "trace-secret").status.ok());
  }

  TEST_CASE("token: revoking a token in the file and sending SIGHUP locks it out, no restart") {
    e2e::TempDir dir;
    const auto tokens = dir.path() / "tokens";
    const auto trace_line = sha256_hex("trace-secret", dir.path()) + " twin-trace\n";
    const auto aegis_line = sha256_hex("aegis-secret", dir.path()) + " twin-aegis\n";
    std::ofstream(tokens) << trace_line << aegis_line;
    Server server({.env = {{"TOOLS_AUTH", "token"}, {"TOOLS_AUTH_TOKENS_FILE", tokens.string()}}});
    const auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
    REQUIRE(call(channel, "twin-aegis", "true", "aegis-secret").response.success());
    std::ofstream(tokens, std::ios::trunc) << trace_line;  // aegis-secret revoked
    ::kill(server.process().pid(), SIGHUP);
    bool revoked = false;
    for (int i = 0; i < 100 && !revoked; ++i) {
      revoked = call(channel, "twin-aegis", "true", "aegis-secret").status.error_code() ==
                grpc::StatusCode::UNAUTHENTICATED;
      if (!revoked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(revoked);
    CHECK(call(channel, "", "vector_query", "trace-secret").status.ok());  // the others stay valid
  }

  TEST_CASE("token: a tokens file with a plaintext token stops start-up, naming the line") {
    e2e::TempDir dir;
    const auto tokens = dir.path() / "tokens";
    std::ofstream(tokens) << "# oops\nhunter2 twin-aegis\n";
    const auto [code, err] = e2e::run_expecting_exit({{"TOOLS_AUTH", "token"}, {"TOOLS_AUTH_TOKENS_FILE", tokens.string()}});
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(err.find(tokens.string() + ":2:") != std::string::npos);
    CHECK(err.find("not a SHA-256 digest") != std::string::npos);
  }

  TEST_CASE("mtls: the client certificate names the twin; other CAs, no certificate and plaintext fail") {
    e2e::TempDir dir;
    const auto certs = make_certs(dir.path() / "pki");
    Server server({.env = {{"TOOLS_AUTH", "mtls"},
                           {"TOOLS_TLS_CERT", (certs / "server.crt").string()},
                           {"TOOLS_TLS_KEY", (certs / "server.key").string()},
                           {"TOOLS_TLS_CLIENT_CA", (certs / "ca.crt").string()}}});
    // The fixture's own stub is plaintext: against a TLS server it gets nowhere.
    grpc::ClientContext plain_context;
    plain_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    tools::HealthCheckResponse health;
    CHECK_FALSE(server.stub().HealthCheck(&plain_context, google::protobuf::Empty(), &health).ok());

    const auto trace = tls_channel(server.address(), certs, "trace");
    const auto as_trace = call(trace, "", "vector_query");
    REQUIRE(as_trace.status.ok());
    CHECK(as_trace.response.exit_code() == 127);  // allowed for twin-trace, no program here
    CHECK(call(trace, "twin-aegis", "true").status.error_code() == grpc::StatusCode::PERMISSION_DENIED);

    const auto aegis = tls_channel(server.address(), certs, "aegis-cn");  // no URI SAN: the CN names it
    CHECK(call(aegis, "twin-aegis", "true").response.success());

    const auto intruder = tls_channel(server.address(), certs, "intruder");  // signed by another CA
    CHECK(call(intruder, "twin-aegis", "true").status.error_code() == grpc::StatusCode::UNAVAILABLE);
    const auto anonymous = tls_channel(server.address(), certs);  // TLS, but no client certificate
    CHECK(call(anonymous, "twin-aegis", "true").status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }

  TEST_CASE("TLS without client certificates serves token clients over TLS") {
    e2e::TempDir dir;
    const auto certs = make_certs(dir.path() / "pki");
    const auto tokens = dir.path() / "tokens";
    std::ofstream(tokens) << sha256_hex("aegis-secret", dir.path()) << " twin-aegis\n";
    Server server({.env = {{"TOOLS_AUTH", "token"},
                           {"TOOLS_AUTH_TOKENS_FILE", tokens.string()},
                           {"TOOLS_TLS_CERT", (certs / "server.crt").string()},
                           {"TOOLS_TLS_KEY", (certs / "server.key").string()}}});
    CHECK(call(tls_channel(server.address(), certs), "twin-aegis", "true", "aegis-secret").response.success());
    CHECK(call(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()), "twin-aegis", "true",
               "aegis-secret")
              .status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }

  TEST_CASE("mismatched security settings stop start-up, naming the variables") {
    const auto [code, err] = e2e::run_expecting_exit({{"TOOLS_AUTH", "mtls"}});
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(err.find("TOOLS_TLS_CLIENT_CA") != std::string::npos);
  }
}
