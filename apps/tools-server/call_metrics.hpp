// SPDX-License-Identifier: Apache-2.0
// A gRPC server interceptor that counts every call by method and status, and the calls in flight.
#pragma once

#include <grpcpp/grpcpp.h>

namespace tools_server {

/// Adds the interceptor that feeds server_metrics(): call_started when a call begins,
/// call_finished with the status it sends. Every method passes through it, whichever service
/// answers; unknown method names count as "other" (a name is never a label).
void add_call_metrics(grpc::ServerBuilder& builder);

}  // namespace tools_server
