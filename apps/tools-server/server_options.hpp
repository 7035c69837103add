// SPDX-License-Identifier: Apache-2.0
// The listener's gRPC options: channel settings, the standard health service and reflection.
#pragma once

#include <grpcpp/grpcpp.h>

#include "config.hpp"

namespace tools_server {

/// Must run before the ServerBuilder is made: turns on grpc++'s default grpc.health.v1.Health
/// service and the reflection service (grpc.reflection.v1alpha.ServerReflection) for every server
/// built afterwards. Not thread-safe (grpc's own switches are not).
void enable_standard_services();

/// Applies `channel` to `builder`: keepalive (and the ping rate clients are allowed, to match),
/// message size limits, connection age. Unset settings keep grpc's defaults.
void apply(const ChannelSettings& channel, grpc::ServerBuilder& builder);

}  // namespace tools_server
