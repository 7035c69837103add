// SPDX-License-Identifier: Apache-2.0
// The listener's gRPC options, applied in one place.
#include "server_options.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

namespace tools_server {
namespace {

int as_int(std::chrono::milliseconds ms) { return static_cast<int>(ms.count()); }  // validated <= INT_MAX

}  // namespace

void enable_standard_services() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
}

void apply(const ChannelSettings& channel, grpc::ServerBuilder& builder) {
  if (channel.keepalive_time) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, as_int(*channel.keepalive_time));
    // A server that pings idle connections lets its clients do the same: by default grpc answers a
    // client pinging more often than every 5 minutes without calls with GOAWAY (too_many_pings).
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, as_int(*channel.keepalive_time));
  }
  if (channel.keepalive_timeout) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, as_int(*channel.keepalive_timeout));
  }
  if (channel.max_receive_message_bytes) {
    builder.SetMaxReceiveMessageSize(static_cast<int>(*channel.max_receive_message_bytes));
  }
  if (channel.max_send_message_bytes) builder.SetMaxSendMessageSize(static_cast<int>(*channel.max_send_message_bytes));
  if (channel.max_connection_age) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, as_int(*channel.max_connection_age));
  }
  if (channel.max_connection_age_grace) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, as_int(*channel.max_connection_age_grace));
  }
}

}  // namespace tools_server
