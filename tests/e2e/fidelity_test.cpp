// SPDX-License-Identifier: Apache-2.0
// E2E, drop-in fidelity (issue 9): what a client of the original service gets back from the real
// server. Mistakes in a tool's arguments are answers (exit 2), bytes the server cannot parse are
// INVALID_ARGUMENT naming the field (sent raw through grpc::GenericStub), and a program that
// cannot start answers 126/127 in every isolation mode, never bwrap's own exit 1.
#include <doctest/doctest.h>

#include <grpcpp/generic/generic_stub.h>

#include "server_fixture.hpp"

using e2e::execute;
using e2e::Server;
using e2e::RawAnswer;
using e2e::next;
using e2e::raw_unary;
using namespace std::chrono_literals;

namespace {

tools::ExecutionRequest make_request(const std::string& twin, const std::string& command,
                                     const std::vector<std::string>& args = {}) {
  tools::ExecutionRequest request;
  request.set_twin_id(twin);
  request.set_command(command);
  for (const auto& arg : args) request.add_args(arg);
  return request;
}

// A server in `isolation` that refuses to start without it; nullptr, with the reason, when this
// machine cannot give it (only cwd must always work).
std::unique_ptr<Server> server_in(const std::string& isolation) {
  try {
    return std::make_unique<Server>(
        e2e::ServerOptions{.env = {{"TOOLS_ISOLATION", isolation}, {"TOOLS_REQUIRE_ISOLATION", "true"}}});
  } catch (const std::exception& e) {
    if (isolation == "cwd") throw;
    test_support::skip_part("isolation " + isolation + " is not available here: " + e.what());
    return nullptr;
  }
}

// StreamExecution with `bytes` as the request: the final status, and how many events came.
std::pair<grpc::Status, int> raw_stream(Server& server, const std::string& bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  grpc::CompletionQueue cq;
  int tags[5];
  auto call = stub.PrepareCall(&context, "/tools.ToolExecutorService/StreamExecution", &cq);
  call->StartCall(&tags[0]);
  next(cq, &tags[0]);
  grpc::Slice slice(bytes);
  call->WriteLast(grpc::ByteBuffer(&slice, 1), grpc::WriteOptions(), &tags[1]);
  next(cq, &tags[1]);
  int events = 0;
  grpc::ByteBuffer event;
  while (true) {
    call->Read(&event, &tags[2]);
    if (!next(cq, &tags[2])) break;
    ++events;
  }
  grpc::Status status;
  call->Finish(&status, &tags[3]);
  next(cq, &tags[3]);
  return {status, events};
}

// A length-delimited field: its tag (field number, wire type 2), length and bytes.
std::string field(int number, const std::string& bytes) {
  std::string out(1, static_cast<char>((number << 3) | 2));
  out += static_cast<char>(bytes.size());  // short fields only: one-byte varint
  return out + bytes;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_SUITE("fidelity") {
  TEST_CASE("a mistake in a tool's arguments is an answer: OK, success=false, exit 2, the reason, recorded") {
    Server server;
    struct Row {
      tools::ExecutionRequest request;
      const char* says;
    };
    const Row rows[] = {
        {make_request("twin-sentinel", "file_write", {"only-a-path"}), "file_write needs exactly 2 arguments"},
        {make_request("twin-sentinel", "command_exec"), "command_exec needs args[0]"},
        {make_request("twin-sentinel", "file_write", {"../escape", "x"}), "path '../escape' has a '..' component"},
        {make_request("twin-aegis", "/usr/bin/printf", {"a", std::string("b\0c", 3)}), "args[1] contains a NUL byte"},
        {make_request("twin-aegis", ""), "no command given"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.says);
      grpc::ClientContext context;
      tools::ExecutionResponse response;
      const auto status = server.stub().RequestExecution(&context, row.request, &response);
      REQUIRE_MESSAGE(status.ok(), status.error_message());
      CHECK_FALSE(response.success());
      CHECK(response.exit_code() == 2);
      CHECK(response.message().find(row.says) != std::string::npos);
      REQUIRE(response.stderr_logs_size() == 1);
      CHECK(response.stderr_logs(0) == response.message());  // no "Policy violation: " prefix
      CHECK(response.policy_rule() == "invalid_request");
      CHECK(response.execution_id().size() == 36);
      // Recorded like any other outcome.
      grpc::ClientContext get_context;
      tools::GetExecutionRequest get;
      get.set_execution_id(response.execution_id());
      tools::ExecutionRecord record;
      REQUIRE(server.stub().GetExecution(&get_context, get, &record).ok());
      CHECK(record.exit_code() == 2);
      CHECK(record.policy_rule() == "invalid_request");
      CHECK_FALSE(record.ran());
      // The dry run gives the same judgement.
      grpc::ClientContext check_context;
      tools::PolicyDecision decision;
      REQUIRE(server.stub().CheckPolicy(&check_context, row.request, &decision).ok());
      CHECK_FALSE(decision.allowed());
      CHECK(decision.rule() == "invalid_request");
      CHECK(decision.reason() == response.message());
      // Streamed: one `finished` event, nothing else.
      grpc::ClientContext stream_context;
      auto reader = server.stub().StreamExecution(&stream_context, row.request);
      std::vector<tools::ExecutionEvent> events;
      for (tools::ExecutionEvent event; reader->Read(&event);) events.push_back(event);
      REQUIRE(reader->Finish().ok());
      REQUIRE(events.size() == 1);
      REQUIRE(events[0].has_finished());
      CHECK(events[0].finished().exit_code() == 2);
      CHECK_FALSE(events[0].finished().success());
      CHECK(events[0].finished().reason() == response.message());
    }
    // Nothing was written, and a policy refusal keeps its shape.
    CHECK_FALSE(std::filesystem::exists(server.sandbox_dir() / "escape"));
    const auto refused = execute(server.stub(), "twin-trace", "file_write", {"x"});
    REQUIRE(refused.status.ok());
    CHECK(refused.response.exit_code() == 1);
    REQUIRE(refused.response.stderr_logs_size() == 1);
    CHECK(refused.response.stderr_logs(0) == "Policy violation: " + refused.response.message());
  }

  TEST_CASE("bytes the server cannot parse are INVALID_ARGUMENT naming the field, one clean log line each") {
    Server server;
    const std::string valid = make_request("twin-aegis", "/usr/bin/printf", {"ok"}).SerializeAsString();
    struct Row {
      const char* what;
      std::string bytes;
      const char* says;
    };
    const Row rows[] = {
        {"invalid UTF-8 in command", field(1, "ech\xff") + field(3, "twin-aegis"), "command is not valid UTF-8 (byte 0xff at offset 3)"},
        {"invalid UTF-8 in args[1]", valid + field(2, "a\xc3"), "args[1] is not valid UTF-8 (byte 0xc3 at offset 1)"},
        {"invalid UTF-8 in twin_id", valid + field(3, "\xed\xa0\x80"), "twin_id is not valid UTF-8"},  // a surrogate
        {"invalid UTF-8 in a metadata value", valid + field(6, field(1, "k") + field(2, "\xc0\xaf")),
         "metadata['k'] is not valid UTF-8"},  // overlong '/'
        {"not protobuf", "\xff\xff\xff\xff", "is not a valid tools.ExecutionRequest"},
        {"a length past the end", field(1, "echo").substr(0, 4), "is not a valid tools.ExecutionRequest"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.what);
      for (const char* method : {"RequestExecution", "CheckPolicy"}) {
        CAPTURE(method);
        const auto answer = raw_unary(server, method, row.bytes);
        CHECK(answer.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
        CHECK(answer.status.error_message().find(row.says) != std::string::npos);
      }
      const auto [status, events] = raw_stream(server, row.bytes);
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(status.error_message().find(row.says) != std::string::npos);
      CHECK(events == 0);
    }
    // The same bytes without the bad field are served, raw as well as through the stub.
    const auto fine = raw_unary(server, "RequestExecution", valid);
    REQUIRE(fine.status.ok());
    tools::ExecutionResponse response;
    REQUIRE(response.ParseFromString(fine.reply));
    CHECK(response.success());
    CHECK(response.stdout_logs(0) == "ok");
    // One clean line per call; nothing from libprotobuf; nothing ran or was recorded.
    const auto log = server.process().stderr_text();
    CAPTURE(log);
    CHECK(count(log, "unparseable_request rpc=") == 3 * std::size(rows));
    CHECK(log.find("libprotobuf") == std::string::npos);
    CHECK(execute(server.stub(), "twin-aegis", "true").response.success());
  }

  TEST_CASE("a program that cannot start answers 126 or 127 in every isolation mode; its own exit 1 stays 1") {
    for (const std::string isolation : {"cwd", "bwrap", "native"}) {
      CAPTURE(isolation);
      const auto server = server_in(isolation);
      if (!server) continue;
      // A file the twin wrote, without execute permission, where its commands see the workspace.
      REQUIRE(execute(server->stub(), "twin-aegis", "file_write", {"run.sh", "#!/bin/sh\necho hi\n"}).response.success());
      const auto script = isolation == "cwd" ? (server->sandbox_dir() / "twin-aegis" / "run.sh").string()
                                             : std::string("/workspace/run.sh");
      struct Row {
        std::string command;
        int exit_code;
      };
      const Row rows[] = {
          {"/", 126},                               // a folder, as the original answers
          {"/usr/bin", 126},                        // another folder
          {"/etc/passwd", 126},                     // a file without execute permission, in every view
          {script, 126},                            // the twin's own file, not executable
          {"/usr/bin/pagi-no-such-program", 127},   // missing, by path
          {"pagi-no-such-program", 127},            // missing, by name
          {"/tmp/pagi-no-such-program", 127},       // missing where the sandbox has its own /tmp
          {"/bin/false", 1},                        // runs, and exits 1 itself
      };
      for (const auto& row : rows) {
        CAPTURE(row.command);
        const auto call = execute(server->stub(), "twin-aegis", row.command);
        REQUIRE_MESSAGE(call.status.ok(), call.status.error_message());
        CHECK_FALSE(call.response.success());
        CHECK(call.response.exit_code() == row.exit_code);
        CHECK(call.response.isolation() == isolation);
        for (const auto& line : call.response.stderr_logs()) CHECK(line.find("bwrap: execvp") == std::string::npos);
      }
      const auto ran = execute(server->stub(), "twin-aegis", "/bin/sh", {"-c", "exit 3"});
      CHECK(ran.response.exit_code() == 3);
    }
  }
}
