// SPDX-License-Identifier: Apache-2.0
// grpc's own log lines (gpr_log) through the server's logger, so that TOOLS_LOG_FORMAT=json
// output stays one JSON object per line and a refused TLS handshake is an event like any other.
#pragma once

namespace tools_server {

/// From now on grpc's log lines are written by tools_server::log (source=grpc). A failed TLS
/// handshake (a client without a valid certificate under mtls, plaintext to a TLS port) becomes
/// a warn line with event=auth_rejected: grpc does not say which peer, only why. Call once,
/// before the server starts.
void send_grpc_logs_to_server_log();

}  // namespace tools_server
