// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: decode -> executor.run(request, stop) -> encode, and nothing else.
#include "service.hpp"

#include "log.hpp"

namespace tools_server {

grpc::Status ToolExecutorService::RequestExecution(grpc::ServerContext* context,
                                                   const tools::ExecutionRequest* request,
                                                   tools::ExecutionResponse* response) {
  auto decoded = codec::from_proto(*request);
  // The RPC deadline caps the execution: a result nobody waits for is not worth computing.
  decoded.timeout_cap = codec::timeout_cap(context->deadline(), std::chrono::system_clock::now());
  const auto watch = watcher_.watch(*context);
  const auto result = executor_.run(decoded, watch.token());
  log_request(decoded, result);
  return codec::to_proto(result, watch.cause(), *response);
}

grpc::Status ToolExecutorService::HealthCheck(grpc::ServerContext* /*context*/,
                                              const google::protobuf::Empty* /*request*/,
                                              tools::HealthCheckResponse* response) {
  *response = codec::to_proto(health_);
  return grpc::Status::OK;
}

}  // namespace tools_server
