// SPDX-License-Identifier: Apache-2.0
// E2E: grpc's standard services and channel settings, through real clients: grpc.health.v1 (Check,
// Watch, readiness), server reflection (a client generated from grpc-proto lists the services and
// calls every RPC of ToolExecutorService from the descriptors it returned, as grpcurl does), the
// message size limits and max connection age.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>

#include "reflection.grpc.pb.h"
#include "server_fixture.hpp"
#include "standard_clients.hpp"

namespace {

using e2e::Server;
using grpc::health::v1::HealthCheckResponse;
using namespace std::chrono_literals;
namespace pb = google::protobuf;
namespace reflection = grpc::reflection::v1alpha;

// --- A reflection client: one ServerReflectionInfo stream, one request and answer at a time. ---

class ReflectionClient {
 public:
  explicit ReflectionClient(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(reflection::ServerReflection::NewStub(channel)) {
    context_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = stub_->ServerReflectionInfo(&context_);
  }
  ~ReflectionClient() {
    stream_->WritesDone();
    (void)stream_->Finish();
  }
  ReflectionClient(const ReflectionClient&) = delete;
  ReflectionClient& operator=(const ReflectionClient&) = delete;

  std::vector<std::string> list_services() {
    reflection::ServerReflectionRequest request;
    request.set_list_services("");
    const auto answer = ask(request);
    REQUIRE(answer.has_list_services_response());
    std::vector<std::string> names;
    for (const auto& service : answer.list_services_response().service()) names.push_back(service.name());
    return names;
  }

  // The file declaring `symbol` and every file it depends on, as serialized FileDescriptorProtos.
  std::vector<pb::FileDescriptorProto> files_containing(const std::string& symbol) {
    reflection::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    const auto answer = ask(request);
    INFO(answer.error_response().error_message());
    REQUIRE(answer.has_file_descriptor_response());
    std::vector<pb::FileDescriptorProto> files;
    for (const auto& bytes : answer.file_descriptor_response().file_descriptor_proto()) {
      REQUIRE(files.emplace_back().ParseFromString(bytes));
    }
    return files;
  }

 private:
  reflection::ServerReflectionResponse ask(const reflection::ServerReflectionRequest& request) {
    REQUIRE(stream_->Write(request));
    reflection::ServerReflectionResponse answer;
    REQUIRE(stream_->Read(&answer));
    return answer;
  }

  std::unique_ptr<reflection::ServerReflection::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<reflection::ServerReflectionRequest, reflection::ServerReflectionResponse>>
      stream_;
};

// Builds `files` into `pool`, each after the files it imports (reflection sends them in any order).
void build_pool(std::vector<pb::FileDescriptorProto> files, pb::DescriptorPool& pool) {
  while (!files.empty()) {
    const auto ready = std::find_if(files.begin(), files.end(), [&](const pb::FileDescriptorProto& file) {
      return std::all_of(file.dependency().begin(), file.dependency().end(),
                         [&](const std::string& dependency) { return pool.FindFileByName(dependency) != nullptr; });
    });
    REQUIRE_MESSAGE(ready != files.end(), "a file imports one reflection did not send");
    REQUIRE(pool.BuildFile(*ready) != nullptr);
    files.erase(ready);
  }
}

// --- A generic call: method path and bytes in, status and messages out, as grpcurl makes it. ---

struct GenericAnswer {
  grpc::Status status;
  std::vector<std::string> messages;
};

GenericAnswer call_generic(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  auto call = stub.PrepareCall(&context, method, &queue);
  REQUIRE(call);
  // One operation at a time: each waits for its own completion.
  const auto step = [&](const std::function<void(void*)>& start) {
    int tag = 0;
    start(&tag);
    void* got = nullptr;
    bool ok = false;
    REQUIRE(queue.Next(&got, &ok));
    REQUIRE(got == &tag);
    return ok;
  };
  REQUIRE(step([&](void* tag) { call->StartCall(tag); }));
  grpc::Slice slice(request);
  const grpc::ByteBuffer bytes(&slice, 1);
  (void)step([&](void* tag) { call->WriteLast(bytes, grpc::WriteOptions(), tag); });
  GenericAnswer answer;
  for (;;) {
    grpc::ByteBuffer message;
    if (!step([&](void* tag) { call->Read(&message, tag); })) break;
    std::vector<grpc::Slice> slices;
    REQUIRE(message.Dump(&slices).ok());
    auto& text = answer.messages.emplace_back();
    for (const auto& part : slices) text.append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  REQUIRE(step([&](void* tag) { call->Finish(&answer.status, tag); }));
  queue.Shutdown();
  void* got = nullptr;
  bool ok = false;
  while (queue.Next(&got, &ok)) {
  }
  return answer;
}

// Sets a string field (appends to a repeated one) by its name, as a user of grpcurl types it.
void set_field(pb::Message& message, const std::string& name, const std::string& value) {
  const auto* field = message.GetDescriptor()->FindFieldByName(name);
  REQUIRE_MESSAGE(field != nullptr, "no field " << name << " in " << message.GetDescriptor()->full_name());
  if (field->is_repeated()) {
    message.GetReflection()->AddString(&message, field, value);
  } else {
    message.GetReflection()->SetString(&message, field, value);
  }
}

const pb::FieldDescriptor& field_of(const pb::Message& message, const std::string& name) {
  const auto* field = message.GetDescriptor()->FindFieldByName(name);
  REQUIRE_MESSAGE(field != nullptr, "no field " << name << " in " << message.GetDescriptor()->full_name());
  return *field;
}

std::string string_field(const pb::Message& message, const std::string& name) {
  return message.GetReflection()->GetString(message, &field_of(message, name));
}

bool bool_field(const pb::Message& message, const std::string& name) {
  return message.GetReflection()->GetBool(message, &field_of(message, name));
}

// Every string of a repeated field, joined.
std::string joined_field(const pb::Message& message, const std::string& name) {
  const auto& field = field_of(message, name);
  std::string text;
  for (int i = 0; i < message.GetReflection()->FieldSize(message, &field); ++i) {
    text += message.GetReflection()->GetRepeatedString(message, &field, i) + "\n";
  }
  return text;
}

// A channel whose client pings every second, also without calls, as an aggressive keepalive does.
std::shared_ptr<grpc::Channel> pinging_channel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // no cap on pings between calls
  args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// Polls Check until it answers `wanted` (the server applies signals on its own thread).
bool health_becomes(const std::shared_ptr<grpc::Channel>& channel, const std::string& service, e2e::ServingStatus wanted) {
  return e2e::eventually([&] {
    const auto answer = e2e::check_health(channel, service);
    return answer.status.ok() && answer.serving == wanted;
  }, 30s);
}

}  // namespace

TEST_SUITE("standard services") {
  TEST_CASE("grpc.health.v1 Check: SERVING for the server and tools.ToolExecutorService, NOT_FOUND for others") {
    Server server;
    const auto channel = e2e::channel_to(server.address());
    for (const std::string service : {"", e2e::tools_service}) {
      CAPTURE(service);
      const auto answer = e2e::check_health(channel, service);
      REQUIRE(answer.status.ok());
      CHECK(answer.serving == HealthCheckResponse::SERVING);
    }
    CHECK(e2e::check_health(channel, "no.Such").status.error_code() == grpc::StatusCode::NOT_FOUND);
  }

  TEST_CASE("grpc.health.v1 Watch: SERVING, then NOT_SERVING once SIGTERM starts the drain") {
    Server server;
    auto stub = grpc::health::v1::Health::NewStub(e2e::channel_to(server.address()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(e2e::tools_service);
    auto watch = stub->Watch(&context, request);
    HealthCheckResponse update;
    REQUIRE(watch->Read(&update));
    CHECK(update.status() == HealthCheckResponse::SERVING);
    REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
    REQUIRE(watch->Read(&update));
    CHECK(update.status() == HealthCheckResponse::NOT_SERVING);
    context.TryCancel();
    (void)watch->Finish();
    const auto code = server.process().wait_exit(30s);
    REQUIRE(code);
    CHECK(*code == 0);
  }

  TEST_CASE("readiness: a failing audit log that is required makes it NOT_SERVING, until it records again") {
    e2e::TempDir dir;
    const auto folder = dir.path() / "logs";
    std::filesystem::create_directories(folder);
    Server server({.env = {{"TOOLS_AUDIT_LOG", (folder / "audit.jsonl").string()}, {"TOOLS_AUDIT_REQUIRED", "true"}}});
    const auto channel = e2e::channel_to(server.address());
    REQUIRE(e2e::execute(server.stub(), "twin-aegis", "true", {}).response.success());
    CHECK(e2e::check_health(channel, "").serving == HealthCheckResponse::SERVING);
    std::filesystem::remove_all(folder);  // the log and its folder vanish: it cannot be reopened
    CHECK(e2e::execute(server.stub(), "twin-aegis", "true", {}).status.error_code() == grpc::StatusCode::UNAVAILABLE);
    // No signal: the server reads readiness again on its own.
    CHECK(health_becomes(channel, "", HealthCheckResponse::NOT_SERVING));
    CHECK(health_becomes(channel, e2e::tools_service, HealthCheckResponse::NOT_SERVING));
    std::filesystem::create_directories(folder);  // the operator fixes it: the next record succeeds
    CHECK(e2e::execute(server.stub(), "twin-aegis", "true", {}).response.success());
    CHECK(health_becomes(channel, "", HealthCheckResponse::SERVING));
    CHECK(health_becomes(channel, e2e::tools_service, HealthCheckResponse::SERVING));
    const auto log = server.process().stderr_text();
    CHECK(log.find("grpc.health.v1: NOT_SERVING (the audit log is failing") != std::string::npos);
    CHECK(log.find("grpc.health.v1: SERVING") != std::string::npos);
  }

  TEST_CASE("reflection lists the services and describes ToolExecutorService, whose every RPC a dynamic call reaches") {
    Server server;
    const auto channel = e2e::channel_to(server.address());
    ReflectionClient client(channel);
    const auto names = client.list_services();
    const std::set<std::string> listed(names.begin(), names.end());
    CHECK(listed.count(e2e::tools_service) == 1);
    CHECK(listed.count("grpc.health.v1.Health") == 1);
    CHECK(listed.count("grpc.reflection.v1alpha.ServerReflection") == 1);

    pb::DescriptorPool pool;
    build_pool(client.files_containing(e2e::tools_service), pool);
    const auto* service = pool.FindServiceByName(e2e::tools_service);
    REQUIRE(service != nullptr);
    pb::DynamicMessageFactory factory(&pool);
    const auto make = [&](const pb::Descriptor* type) { return std::unique_ptr<pb::Message>(factory.GetPrototype(type)->New()); };

    // What a user would type for each RPC, and what its answer must say; run in this order (the
    // execution id of the first is looked up by GetExecution).
    std::string execution_id;
    struct Rpc {
      std::function<void(pb::Message&)> fill;
      std::function<void(const std::vector<std::unique_ptr<pb::Message>>&)> check;
    };
    const auto execution_request = [](pb::Message& request) {
      set_field(request, "twin_id", "twin-aegis");
      set_field(request, "command", "command_exec");
      set_field(request, "args", "echo reflected");
    };
    const std::vector<std::pair<std::string, Rpc>> rpcs{
        {"RequestExecution", {execution_request, [&](const auto& answers) {
           REQUIRE(answers.size() == 1);
           CHECK(bool_field(*answers[0], "success"));
           CHECK(joined_field(*answers[0], "stdout_logs") == "reflected\n");
           execution_id = string_field(*answers[0], "execution_id");
         }}},
        {"StreamExecution", {execution_request, [&](const auto& answers) {
           REQUIRE(answers.size() >= 2);  // started, output, finished
           const auto& last = *answers.back();
           const auto& finished = last.GetReflection()->GetMessage(last, &field_of(last, "finished"));
           CHECK(bool_field(finished, "success"));
         }}},
        {"HealthCheck", {[](pb::Message&) {}, [&](const auto& answers) {
           REQUIRE(answers.size() == 1);
           CHECK(string_field(*answers[0], "status") == "healthy");
         }}},
        {"CheckPolicy", {execution_request, [&](const auto& answers) {
           REQUIRE(answers.size() == 1);
           CHECK(bool_field(*answers[0], "allowed"));
         }}},
        {"ListExecutions", {[](pb::Message&) {}, [&](const auto& answers) {
           REQUIRE(answers.size() == 1);
           CHECK(answers[0]->GetReflection()->FieldSize(*answers[0], &field_of(*answers[0], "executions")) >= 2);
         }}},
        {"GetExecution", {[&](pb::Message& request) { set_field(request, "execution_id", execution_id); },
                          [&](const auto& answers) {
                            REQUIRE(answers.size() == 1);
                            CHECK(string_field(*answers[0], "execution_id") == execution_id);
                          }}},
    };

    std::set<std::string> described;
    for (int i = 0; i < service->method_count(); ++i) described.insert(service->method(i)->name());
    std::set<std::string> called;
    for (const auto& [name, rpc] : rpcs) {
      CAPTURE(name);
      const auto* method = service->FindMethodByName(name);
      REQUIRE(method != nullptr);
      auto request = make(method->input_type());
      rpc.fill(*request);
      const auto answer = call_generic(channel, "/" + service->full_name() + "/" + method->name(),
                                       request->SerializeAsString());
      INFO(answer.status.error_message());
      REQUIRE(answer.status.ok());
      CHECK(method->server_streaming() == (name == "StreamExecution"));
      std::vector<std::unique_ptr<pb::Message>> answers;
      for (const auto& bytes : answer.messages) {
        REQUIRE(answers.emplace_back(make(method->output_type()))->ParseFromString(bytes));
      }
      rpc.check(answers);
      called.insert(name);
    }
    CHECK(called == described);  // every RPC reflection describes was called, and nothing else
  }

  TEST_CASE("TOOLS_MAX_RECEIVE_MESSAGE_BYTES: a larger request gets RESOURCE_EXHAUSTED, a smaller one runs") {
    Server server({.env = {{"TOOLS_MAX_RECEIVE_MESSAGE_BYTES", "4096"}}});
    const auto small = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"echo fits"});
    REQUIRE(small.status.ok());
    CHECK(small.response.success());
    const auto large = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"echo " + std::string(8000, 'x')});
    CHECK(large.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }

  TEST_CASE("TOOLS_MAX_SEND_MESSAGE_BYTES: a larger answer fails with RESOURCE_EXHAUSTED, a smaller one arrives") {
    Server server({.env = {{"TOOLS_MAX_SEND_MESSAGE_BYTES", "2048"}}});
    const auto small = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"echo fits"});
    REQUIRE(small.status.ok());
    CHECK(small.response.success());
    const auto large = e2e::execute(server.stub(), "twin-aegis", "command_exec", {"head -c 3000 /dev/zero | tr '\\0' a"});
    CHECK(large.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }

  TEST_CASE("TOOLS_KEEPALIVE_TIME_MS: a client pinging as often stays connected, where grpc's default sends it away") {
    Server strict;  // grpc's default: pings without calls more often than every 5 minutes are abuse
    Server keepalive({.env = {{"TOOLS_KEEPALIVE_TIME_MS", "1000"}, {"TOOLS_KEEPALIVE_TIMEOUT_MS", "10000"}}});
    const auto connected = std::chrono::steady_clock::now();
    const auto to_keepalive = pinging_channel(keepalive.address());
    const auto to_strict = pinging_channel(strict.address());
    REQUIRE(e2e::check_health(to_keepalive, "").status.ok());
    REQUIRE(e2e::check_health(to_strict, "").status.ok());
    // The strict server's GOAWAY (too_many_pings) after a few pings takes its channel out of
    // READY: that connection's lifetime is the yardstick.
    REQUIRE(to_strict->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + 60s));
    const auto strict_lifetime = std::chrono::steady_clock::now() - connected;
    // The other connection, pinged as often, lives on for as long again (twice what the strict
    // server allowed): no GOAWAY ends it.
    CHECK_FALSE(to_keepalive->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + strict_lifetime));
    CHECK(to_keepalive->GetState(false) == GRPC_CHANNEL_READY);
  }

  TEST_CASE("TOOLS_MAX_CONNECTION_AGE_MS: the server ends an old connection (GOAWAY) and the channel reconnects") {
    Server server({.env = {{"TOOLS_MAX_CONNECTION_AGE_MS", "500"}, {"TOOLS_MAX_CONNECTION_AGE_GRACE_MS", "1000"}}});
    const auto channel = e2e::channel_to(server.address());
    REQUIRE(e2e::check_health(channel, "").status.ok());
    REQUIRE(channel->GetState(false) == GRPC_CHANNEL_READY);
    // The GOAWAY takes the channel out of READY; without an age limit it would stay there.
    CHECK(channel->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + 60s));
    CHECK(channel->GetState(false) != GRPC_CHANNEL_READY);
    const auto again = e2e::check_health(channel, "");  // a new connection
    REQUIRE(again.status.ok());
    CHECK(again.serving == HealthCheckResponse::SERVING);
  }
}
