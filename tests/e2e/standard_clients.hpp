// SPDX-License-Identifier: Apache-2.0
// E2E: clients of grpc's standard health service, generated from Debian's grpc-proto.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "health.grpc.pb.h"

namespace e2e {

using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

/// What grpc.health.v1.Health/Check answered for `service` ("" = the whole server).
struct HealthAnswer {
  grpc::Status status;
  ServingStatus serving = grpc::health::v1::HealthCheckResponse::UNKNOWN;
};

inline HealthAnswer check_health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  HealthAnswer answer;
  answer.status = stub->Check(&context, request, &response);
  answer.serving = response.status();
  return answer;
}

inline std::shared_ptr<grpc::Channel> channel_to(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

/// The service name of tools.proto, as grpc.health.v1 and reflection know it.
inline constexpr const char* tools_service = "tools.ToolExecutorService";

}  // namespace e2e
