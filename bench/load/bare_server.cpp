// SPDX-License-Identifier: Apache-2.0
// bare-server: tools.ToolExecutorService with nothing but a posix_spawnp per RequestExecution
// (no sandbox, policy, history, audit or admission) on grpc++'s sync server with its default
// thread settings. It is the baseline pagi-exec is measured against: the ceiling for "run a
// process per request", and for cheap calls a bare grpc++ unary echo.
#include <csignal>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>
#include <google/protobuf/empty.pb.h>
#include <grpcpp/grpcpp.h>

#include "bare_process.hpp"
#include "tools.grpc.pb.h"

namespace {

void add_lines(std::string_view text, google::protobuf::RepeatedPtrField<std::string>& lines) {
  while (!text.empty()) {
    const auto newline = text.find('\n');
    lines.Add()->assign(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
  }
}

class BareService final : public tools::ToolExecutorService::Service {
  grpc::Status RequestExecution(grpc::ServerContext* /*context*/, const tools::ExecutionRequest* request,
                                tools::ExecutionResponse* response) override {
    std::vector<std::string> argv{request->command()};
    argv.insert(argv.end(), request->args().begin(), request->args().end());
    const auto result = bare_server::run_process(argv);
    response->set_success(result.exit_code == 0);
    response->set_exit_code(result.exit_code);
    add_lines(result.out, *response->mutable_stdout_logs());
    add_lines(result.err, *response->mutable_stderr_logs());
    return grpc::Status::OK;
  }

  grpc::Status HealthCheck(grpc::ServerContext* /*context*/, const google::protobuf::Empty* /*request*/,
                           tools::HealthCheckResponse* response) override {
    response->set_status("healthy");
    return grpc::Status::OK;
  }

  grpc::Status CheckPolicy(grpc::ServerContext* /*context*/, const tools::ExecutionRequest* /*request*/,
                           tools::PolicyDecision* decision) override {
    decision->set_allowed(true);
    decision->set_rule("bare-server");
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  CLI::App app{"bare-server: tools.ToolExecutorService answered by posix_spawnp + wait and nothing else "
               "(a benchmark baseline: no sandbox, no policy). Prints 'listening on ADDRESS' first."};
  app.add_option("--listen", listen, "HOST:PORT (port 0 picks a free one) or unix:/path")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Blocked before grpc starts its threads, which inherit the mask: only sigwait() below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  BareService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a busy port is an error, not shared
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  const auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "bare-server: cannot listen on " << listen << '\n';
    return 1;
  }
  const bool is_unix = listen.starts_with("unix:");
  std::cout << "listening on " << (is_unix ? listen : listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port))
            << std::endl;  // scripts read the address here, as from tools-server

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  return 0;
}
