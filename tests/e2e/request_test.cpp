// SPDX-License-Identifier: Apache-2.0
// E2E, issue 8 items 3, 4 and 6 through the real server: NUL bytes, shells granted by name,
// request size limits, bounded history, ListExecutions pages a default client can read.
#include <doctest/doctest.h>

#include <fstream>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

// "touch" stands in for a refused program: if a refusal ever failed, it leaves a file behind
// instead of harming the machine that runs the tests.
constexpr const char* policy_text = R"(
always_refused = ["rm", "delete", "format", "shutdown", "reboot", "touch"]
[twins.twin-aegis]
allow = ["*"]
[twins.twin-shell]
allow = ["sh", "/bin/bash", "python3", "fetch"]
deny = ["curl"]
[twins.twin-shell.limits]
timeout_ms = 86400000
memory_mb = 1048576
output_bytes = 1073741824
[tools.fetch]
program = "/usr/bin/curl"
)";

struct Fixture {
  e2e::TempDir dir;
  std::filesystem::path audit = dir.path() / "audit.jsonl";
  std::unique_ptr<Server> server;

  explicit Fixture(e2e::Env extra = {}) {
    std::ofstream(dir.path() / "policy.toml") << policy_text;
    e2e::Env env{{"TOOLS_POLICY_FILE", (dir.path() / "policy.toml").string()}, {"TOOLS_AUDIT_LOG", audit.string()}};
    for (auto& [k, v] : extra) env[k] = v;
    server = std::make_unique<Server>(e2e::ServerOptions{.env = env});
  }
};

tools::ExecutionRequest make_request(const std::string& twin, const std::string& command,
                                     const std::vector<std::string>& args = {}, const std::string& job = "") {
  tools::ExecutionRequest request;
  request.set_twin_id(twin);
  request.set_command(command);
  request.set_job_id(job);
  for (const auto& a : args) request.add_args(a);
  return request;
}

e2e::Call call(Server& server, const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  e2e::Call out;
  out.status = server.stub().RequestExecution(&context, request, &out.response);
  return out;
}

tools::PolicyDecision check(Server& server, const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  tools::PolicyDecision decision;
  REQUIRE(server.stub().CheckPolicy(&context, request, &decision).ok());
  return decision;
}

// Every record of the history, walking the pages as a default client (4 MiB limit) does.
std::vector<tools::ExecutionRecord> all_records(Server& server, int* pages = nullptr) {
  std::vector<tools::ExecutionRecord> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    grpc::ClientContext context;
    tools::ListExecutionsRequest request;
    request.set_page_token(token);
    tools::ListExecutionsResponse response;
    const auto status = server.stub().ListExecutions(&context, request, &response);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    CHECK(response.ByteSizeLong() < (4U << 20U));
    out.insert(out.end(), response.executions().begin(), response.executions().end());
    if (pages != nullptr) *pages = page + 1;
    if (response.next_page_token().empty()) break;
    token = response.next_page_token();
  }
  return out;
}

std::uint64_t rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

bool healthy(Server& server) {
  grpc::ClientContext context;
  tools::HealthCheckResponse response;
  return server.stub().HealthCheck(&context, google::protobuf::Empty(), &response).ok();
}

}  // namespace

TEST_SUITE("requests") {
  TEST_CASE("a NUL byte in command, args, twin_id or job_id is refused, nothing runs, the server serves on") {
    Fixture f;
    const auto marker = f.dir.path() / "marker";
    std::ofstream(f.dir.path() / "victim") << "still here";
    const auto victim = (f.dir.path() / "victim").string();
    struct Row {
      tools::ExecutionRequest request;
      const char* field;
    };
    const Row rows[] = {
        {make_request("twin-aegis", "/bin/rm\0"s, {"-f", victim}), "command"},
        {make_request("twin-aegis", "rm\0"s, {"-f", victim}), "command"},
        {make_request("twin-aegis", "/bin/rm\0x"s, {"-f", victim}), "command"},
        {make_request("twin-aegis", "/usr/bin/touch\0"s, {marker.string()}), "command"},
        {make_request("twin-aegis", "command_exec", {"touch " + marker.string() + "\0 now"s}), "args[0]"},
        {make_request("twin-aegis", "/usr/bin/printf", {"x", "a\0b"s}), "args[1]"},
        {make_request("twin-aegis\0x"s, "/usr/bin/true"), "twin_id"},
        {make_request("twin-aegis", "/usr/bin/true", {}, "job\0"s), "job_id"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.field);
      const auto answer = call(*f.server, row.request);  // a mistake in the call: answered in-band, exit 2
      REQUIRE(answer.status.ok());
      CHECK_FALSE(answer.response.success());
      CHECK(answer.response.exit_code() == 2);
      CHECK(answer.response.message().rfind(std::string(row.field) + " contains a NUL byte", 0) == 0);
      REQUIRE(answer.response.stderr_logs_size() == 1);
      CHECK(answer.response.stderr_logs(0) == answer.response.message());
      // The dry run refuses the same way, in-band.
      const auto decision = check(*f.server, row.request);
      CHECK_FALSE(decision.allowed());
      CHECK(decision.rule() == "invalid_request");
      CHECK(decision.reason().rfind(std::string(row.field) + " contains a NUL byte", 0) == 0);
    }
    // The literal of the issue, judged only (a dry run): never sent to be run.
    const auto reboot = check(*f.server, make_request("twin-aegis", "command_exec", {"reboot\0 now"s}));
    CHECK_FALSE(reboot.allowed());
    CHECK(reboot.rule() == "invalid_request");
    CHECK(check(*f.server, make_request("twin-aegis", "command_exec", {"reboot now"})).rule() == "always_refused[reboot]");

    // Nothing ran: the files are as they were, and history and audit hold refusals only.
    CHECK(e2e::read_text(victim) == "still here");
    CHECK_FALSE(std::filesystem::exists(marker));
    const auto records = all_records(*f.server);
    REQUIRE(records.size() == std::size(rows));
    for (const auto& record : records) {
      CHECK_FALSE(record.allowed());
      CHECK_FALSE(record.ran());
      CHECK(record.policy_rule() == "invalid_request");
      CHECK(record.reason().find("contains a NUL byte") != std::string::npos);
    }
    const auto audit = pagi_exec::read_audit_log(f.audit, {});
    REQUIRE(audit);
    CHECK(audit->decisions == std::size(rows));
    CHECK(audit->refused == std::size(rows));
    CHECK(audit->executions == 0);
    // The server serves on.
    CHECK(healthy(*f.server));
    const auto fine = execute(f.server->stub(), "twin-aegis", "/usr/bin/printf", {"ok"});
    REQUIRE(fine.status.ok());
    CHECK(fine.response.success());
    CHECK(fine.response.stdout_logs(0) == "ok");
  }

  TEST_CASE("a shell granted by name is scanned like command_exec; interpreters are noted; catalog tools denied") {
    Fixture f;
    const auto marker = f.dir.path() / "marker";
    for (const auto& args : std::vector<std::vector<std::string>>{{"-c", "touch " + marker.string()},
                                                                  {"-ec", "true; touch " + marker.string()},
                                                                  {"-e", "-c", "eval touch " + marker.string()}}) {
      for (const char* shell : {"sh", "/bin/bash"}) {
        CAPTURE(shell);
        CAPTURE(args.back());
        const auto answer = execute(f.server->stub(), "twin-shell", shell, args);
        REQUIRE(answer.status.ok());
        CHECK_FALSE(answer.response.success());
        CHECK(answer.response.policy_rule() == "always_refused[touch]");
      }
    }
    CHECK_FALSE(std::filesystem::exists(marker));
    const auto fetch = execute(f.server->stub(), "twin-shell", "fetch", {"http://127.0.0.1:1/"});
    REQUIRE(fetch.status.ok());
    CHECK(fetch.response.policy_rule() == "twins.twin-shell.deny[curl]");
    // python3 -c runs (it is granted), with the note in the dry run and in the audit record.
    const auto python = make_request("twin-shell", "python3", {"-c", "print(6 * 7)"});
    const auto decision = check(*f.server, python);
    CHECK(decision.allowed());
    REQUIRE(decision.notes_size() == 1);
    CHECK(decision.notes(0) == "unjudgeable: `python3` runs code the scanner cannot read");
    if (std::filesystem::exists("/usr/bin/python3")) {
      const auto ran = call(*f.server, python);
      REQUIRE(ran.status.ok());
      CHECK(ran.response.stdout_logs(0) == "42");
      const auto audit = pagi_exec::read_audit_log(f.audit, {.outcome = "allowed"});
      REQUIRE(audit);
      REQUIRE_FALSE(audit->entries.empty());
      CHECK(audit->entries.back().notes == std::vector<std::string>{decision.notes(0)});
    }
    // The policy file gives twin-shell a day, 1 TiB and 1 GiB of output: the server's own
    // maxima (10 s, 512 MiB, 32 KiB) still hold.
    const auto limits = check(*f.server, make_request("twin-shell", "sh", {"-c", "ls"})).limits();
    CHECK(limits.timeout_ms() == 10000);
    CHECK(limits.output_bytes() == 32768);
  }

  TEST_CASE("60 requests of 3.5 MiB are refused, the server stays small, and the history pages stay readable") {
    Fixture f;
    const auto pid = f.server->process().pid();
    REQUIRE(execute(f.server->stub(), "twin-aegis", "/usr/bin/true").response.success());  // warm up
    const auto before = rss_bytes(pid);
    const auto big = make_request("twin-aegis", "rm", std::vector<std::string>(35, std::string(105 * 1024, 'a')));
    REQUIRE(big.ByteSizeLong() > (3U << 20U) + (512U << 10U));
    for (int i = 0; i < 60; ++i) {
      const auto answer = call(*f.server, big);
      REQUIRE(answer.status.ok());
      REQUIRE(answer.response.exit_code() == 2);
      CHECK(answer.response.message().find("TOOLS_MAX_REQUEST_BYTES") != std::string::npos);
    }
    const auto after = rss_bytes(pid);
    const auto grown = after > before ? after - before : 0;
    MESSAGE("server RSS " << (before >> 20) << " MiB -> " << (after >> 20) << " MiB after 60 requests of "
                          << (big.ByteSizeLong() >> 10) << " KiB (grew " << (grown >> 10) << " KiB)");
    CHECK(grown < (48U << 20U));  // before issue 8: 231 MiB, the history kept every argument
    int pages = 0;
    const auto records = all_records(*f.server, &pages);
    CHECK(records.size() == 61);
    for (const auto& record : records) {
      if (record.allowed()) continue;
      CHECK(record.arg_count() == 35);
      CHECK(record.args_truncated());
      std::size_t kept = 0;
      for (const auto& arg : record.args()) kept += arg.size();
      CHECK(kept <= 4096);
    }
    CHECK(healthy(*f.server));
    // Just within the limit, a request is served (execve takes at most 128 KiB per argument).
    const auto fits = make_request("twin-aegis", "/usr/bin/true", std::vector<std::string>(9, std::string(110 << 10, 'a')));
    CHECK(call(*f.server, fits).response.success());
    const auto too_many = make_request("twin-aegis", "/usr/bin/true", std::vector<std::string>(1025, "a"));
    const auto refused = call(*f.server, too_many);
    REQUIRE(refused.status.ok());
    CHECK(refused.response.exit_code() == 2);
    CHECK(refused.response.message() == "the request has 1025 args; at most 1024 are accepted (TOOLS_MAX_ARGS)");
  }

  TEST_CASE("every ListExecutions page fits a default client however much output the records hold") {
    Fixture f({{"TOOLS_MAX_OUTPUT_BYTES", std::to_string(3'500'000)}, {"TOOLS_MAX_OUTPUT_LINES", "100000"}});
    // Each run keeps 3.4 MB of output: two such records would not fit one 4 MiB message.
    const std::string line = "head -c 3400000 /dev/zero | tr '\\0' a | fold -w 1000";
    for (int i = 0; i < 4; ++i) {
      const auto answer = execute(f.server->stub(), "twin-aegis", "command_exec", {line});
      REQUIRE(answer.status.ok());
      REQUIRE(answer.response.success());
      CHECK(answer.response.stdout_logs_size() == 3400);
    }
    int pages = 0;
    const auto records = all_records(*f.server, &pages);
    CHECK(records.size() == 4);
    CHECK(pages >= 4);
    std::size_t with_output = 0;
    for (const auto& record : records) with_output += record.stdout_logs_size() == 3400 ? 1U : 0U;
    CHECK(with_output == 4);  // one per page, each with its output
  }

  TEST_CASE("a record too big for one message is listed and fetched without its output, and says so") {
    Fixture f({{"TOOLS_MAX_OUTPUT_BYTES", std::to_string(5'000'000)}, {"TOOLS_MAX_OUTPUT_LINES", "100000"}});
    // The response itself is past a default client's 4 MiB: that call fails on the client's side,
    // but the run is in the history, holding its 5 MB of output.
    const auto big = execute(f.server->stub(), "twin-aegis", "command_exec",
                             {"head -c 5000000 /dev/zero | tr '\\0' a | fold -w 1000"});
    CHECK(big.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    const auto records = all_records(*f.server);
    REQUIRE(records.size() == 1);
    CHECK(records[0].output_dropped());
    CHECK(records[0].stdout_logs_size() == 0);
    grpc::ClientContext context;
    tools::GetExecutionRequest get;
    get.set_execution_id(records[0].execution_id());
    tools::ExecutionRecord record;
    const auto status = f.server->stub().GetExecution(&context, get, &record);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    CHECK(record.output_dropped());
    CHECK(record.ran());
  }

  TEST_CASE("the CLI honours the same request limits") {
    const char* cli = std::getenv("PAGI_EXEC_CLI");
    REQUIRE(cli != nullptr);
    e2e::TempDir dir;
    e2e::Env env{{"PATH", "/usr/bin:/bin"}, {"TOOLS_MAX_ARGS", "2"}};
    e2e::Process process({cli, "check", "--twin", "twin-aegis", "--", "echo", "a", "b", "c"}, env, dir.path() / "err");
    CHECK(process.wait_exit() == 2);  // a usage error, as the server's answer is
    std::string out;
    if (auto first = process.first_line(1s)) out = *first;
    CHECK(out == "invalid request: the request has 3 args; at most 2 are accepted (TOOLS_MAX_ARGS) (rule "
                 "invalid_request, policy builtin)");
  }
}
