// SPDX-License-Identifier: Apache-2.0
// E2E: TOOLS_LOG_FORMAT=json. Every line the server writes is one JSON object, and each event an
// operator alerts on (a request, a refused credential, an admission rejection, a policy reload
// that worked or failed) is one line at its level with its fields.
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"

using e2e::Server;
using nlohmann::json;

namespace {

constexpr char policy_text[] = R"(always_refused = ["rm"]
[twins.twin-aegis]
allow = ["*"]
)";

// Every line of the server's stderr, each parsed (a line that is not JSON fails the test).
std::vector<json> json_lines(Server& server) {
  std::vector<json> lines;
  std::istringstream text(server.process().stderr_text());
  for (std::string line; std::getline(text, line);) {
    CAPTURE(line);
    const auto parsed = json::parse(line, nullptr, false);
    CHECK_FALSE(parsed.is_discarded());
    CHECK(parsed.is_object());
    if (parsed.is_object()) lines.push_back(parsed);
  }
  return lines;
}

// The lines whose `key` is `value`.
std::vector<json> where(const std::vector<json>& lines, const std::string& key, const std::string& value) {
  std::vector<json> found;
  for (const auto& line : lines) {
    if (line.contains(key) && line[key] == value) found.push_back(line);
  }
  return found;
}

grpc::Status call(Server& server, const std::string& token, const std::string& command,
                  const std::vector<std::string>& args, tools::ExecutionResponse& response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  context.AddMetadata("authorization", "Bearer " + token);
  tools::ExecutionRequest request;
  request.set_twin_id("twin-aegis");
  request.set_command(command);
  for (const auto& arg : args) request.add_args(arg);
  return server.stub().RequestExecution(&context, request, &response);
}

}  // namespace

TEST_SUITE("log_format") {
  TEST_CASE("TOOLS_LOG_FORMAT=json: one object per line, the alerting events with their fields") {
    e2e::TempDir dir;
    const auto tokens = dir.path() / "tokens";
    std::ofstream(tokens) << e2e::sha256_hex("aegis-secret", dir.path()) << " twin-aegis\n";
    const auto policy = dir.path() / "policy.toml";
    std::ofstream(policy) << policy_text;
    Server server({.env = {{"TOOLS_LOG_FORMAT", "json"}, {"TOOLS_AUTH", "token"},
                           {"TOOLS_AUTH_TOKENS_FILE", tokens.string()}, {"TOOLS_POLICY_FILE", policy.string()},
                           {"TOOLS_MAX_CONCURRENCY", "1"}, {"TOOLS_EXEC_TIMEOUT_MS", "60000"}}});

    tools::ExecutionResponse response;
    REQUIRE(call(server, "aegis-secret", "echo", {"hi"}, response).ok());
    CHECK(response.success());
    REQUIRE(call(server, "aegis-secret", "rm", {"-rf", "/"}, response).ok());
    CHECK_FALSE(response.success());
    CHECK(call(server, "wrong-secret", "echo", {"x"}, response).error_code() == grpc::StatusCode::UNAUTHENTICATED);

    // The only slot is held by a run that waits for the test's word: the next one is turned away.
    const auto go = server.scratch() / "go";
    const auto started = server.scratch() / "started";
    std::thread holder([&] {
      tools::ExecutionResponse held;
      (void)call(server, "aegis-secret", "command_exec",
                 {"touch " + started.string() + "; while [ ! -e " + go.string() + " ]; do sleep 0.01; done"}, held);
    });
    REQUIRE(e2e::eventually([&] { return std::filesystem::exists(started); }));
    CHECK(call(server, "aegis-secret", "echo", {"more"}, response).error_code() ==
          grpc::StatusCode::RESOURCE_EXHAUSTED);
    std::ofstream(go) << "go";
    holder.join();

    // A reload that works, then one that fails and keeps the policy in effect.
    ::kill(server.process().pid(), SIGHUP);
    REQUIRE(e2e::eventually([&] { return !where(json_lines(server), "event", "policy_reload").empty(); }));
    std::ofstream(policy) << "this is = = not toml\n";
    ::kill(server.process().pid(), SIGHUP);
    REQUIRE(e2e::eventually([&] { return !where(json_lines(server), "result", "failed").empty(); }));

    const auto lines = json_lines(server);
    for (const auto& line : lines) {
      CAPTURE(line.dump());
      CHECK(line.at("time").is_string());
      CHECK(line.at("message").is_string());
      const std::string level = line.at("level");
      CHECK((level == "error" || level == "warn" || level == "info" || level == "debug"));
    }

    const auto requests = where(lines, "message", "request");
    const auto allowed = where(requests, "outcome", "succeeded");
    REQUIRE(allowed.size() >= 2);  // echo hi and the run that held the slot
    CHECK(allowed[0].at("level") == "info");
    CHECK(allowed[0].at("twin") == "twin-aegis");
    CHECK(allowed[0].at("tool") == "echo");
    CHECK(allowed[0].at("decision") == "allowed");
    CHECK(allowed[0].at("rule").get<std::string>().find("twin-aegis") != std::string::npos);
    CHECK(allowed[0].at("exit") == 0);
    CHECK(allowed[0].at("duration_ms").is_number_integer());
    CHECK(allowed[0].at("execution_id").get<std::string>().size() == 36);  // a UUID

    const auto refused = where(requests, "outcome", "refused");
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].at("rule") == "always_refused[rm]");
    CHECK(refused[0].at("level") == "info");

    const auto rejected = where(lines, "message", "auth_rejected");
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0].at("level") == "warn");
    CHECK(rejected[0].at("rpc") == "RequestExecution");
    CHECK(rejected[0].at("status") == "UNAUTHENTICATED");
    CHECK(rejected[0].dump().find("wrong-secret") == std::string::npos);  // the credential never appears

    const auto admission = where(lines, "message", "admission_rejected");
    REQUIRE(admission.size() == 1);
    CHECK(admission[0].at("level") == "warn");
    CHECK(admission[0].at("error") == "resource_exhausted");
    CHECK(admission[0].at("reason").get<std::string>().find("concurrency limit") != std::string::npos);

    const auto reloads = where(lines, "event", "policy_reload");
    const auto ok = where(reloads, "result", "ok");
    const auto failed = where(reloads, "result", "failed");
    REQUIRE(ok.size() >= 1);  // the reload, then the notices that follow it (twins on the host's network)
    CHECK(ok[0].at("message").get<std::string>().find("policy reloaded") != std::string::npos);
    REQUIRE(failed.size() == 1);
    CHECK(ok[0].at("level") == "info");
    CHECK(failed[0].at("level") == "error");
    CHECK(failed[0].at("message").get<std::string>().find("NOT reloaded") != std::string::npos);
    // The failed reload names the revision still in effect: the one the good reload loaded.
    CHECK(failed[0].at("policy_revision") == ok[0].at("policy_revision"));
  }

  TEST_CASE("mtls: a client without a valid certificate is an auth_rejected JSON line, grpc's own lines too") {
    e2e::TempDir dir;
    const auto certs = e2e::make_certs(dir.path() / "pki");
    Server server({.env = {{"TOOLS_LOG_FORMAT", "json"}, {"TOOLS_AUTH", "mtls"},
                           {"TOOLS_TLS_CERT", (certs / "server.crt").string()},
                           {"TOOLS_TLS_KEY", (certs / "server.key").string()},
                           {"TOOLS_TLS_CLIENT_CA", (certs / "ca.crt").string()}}});
    for (const auto* client : {"", "intruder"}) {  // no certificate; one signed by another CA
      auto stub = tools::ToolExecutorService::NewStub(e2e::tls_channel(server.address(), certs, client));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      tools::HealthCheckResponse response;
      CHECK(stub->HealthCheck(&context, google::protobuf::Empty(), &response).error_code() ==
            grpc::StatusCode::UNAVAILABLE);
    }
    REQUIRE(e2e::eventually([&] { return where(json_lines(server), "event", "auth_rejected").size() >= 2; }));
    for (const auto& line : where(json_lines(server), "event", "auth_rejected")) {
      CAPTURE(line.dump());
      CHECK(line.at("level") == "warn");
      CHECK(line.at("message") == "tls_handshake_failed");
      CHECK(line.at("reason").get<std::string>().find("Handshake failed") != std::string::npos);
    }
  }

  TEST_CASE("a start-up failure in JSON format is a JSON error line") {
    const auto [code, text] = e2e::run_expecting_exit({{"TOOLS_LOG_FORMAT", "json"}, {"TOOLS_POLICY_FILE", "/nonexistent/policy.toml"}});
    REQUIRE(code);
    CHECK(*code != 0);
    CAPTURE(text);
    const auto last = text.substr(text.rfind('\n', text.size() - 2) + 1);
    const auto parsed = json::parse(last, nullptr, false);
    REQUIRE(parsed.is_object());
    CHECK(parsed.at("level") == "error");
    CHECK(parsed.at("event") == "startup_failed");
    CHECK(parsed.at("message").get<std::string>().find("TOOLS_POLICY_FILE") != std::string::npos);
  }

  TEST_CASE("TOOLS_LOG_FORMAT with a bad value: a precise start-up error") {
    const auto [code, text] = e2e::run_expecting_exit({{"TOOLS_LOG_FORMAT", "yaml"}});
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(text.find("TOOLS_LOG_FORMAT / --log-format: 'yaml' is not a log format (text, json)") != std::string::npos);
  }
}
