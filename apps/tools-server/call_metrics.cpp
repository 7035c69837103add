// SPDX-License-Identifier: Apache-2.0
// The counting interceptor: one per call, made when the call begins and destroyed with it.
#include "call_metrics.hpp"

#include <memory>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "metrics.hpp"

namespace tools_server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class CallCounter final : public grpc::experimental::Interceptor {
 public:
  explicit CallCounter(Rpc rpc) : rpc_(rpc) { server_metrics().call_started(rpc_); }
  // A call that ends without sending a status (the server shut down first) counts as CANCELLED.
  ~CallCounter() override { server_metrics().call_finished(rpc_, code_); }
  CallCounter(const CallCounter&) = delete;
  CallCounter& operator=(const CallCounter&) = delete;

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      code_ = static_cast<int>(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  Rpc rpc_;
  int code_ = static_cast<int>(grpc::StatusCode::CANCELLED);
};

class CallCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new CallCounter(rpc_from_method(info->method()));  // grpc owns and deletes it
  }
};

}  // namespace

void add_call_metrics(grpc::ServerBuilder& builder) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<CallCounterFactory>());
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

}  // namespace tools_server
