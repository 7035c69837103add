// SPDX-License-Identifier: Apache-2.0
#include "grpc_log.hpp"

#include <string>
#include <string_view>

#include <grpc/support/log.h>

#include "log.hpp"

namespace tools_server {
namespace {

void write_grpc_line(gpr_log_func_args* args) {
  const std::string_view message = args->message != nullptr ? args->message : "";
  const std::string origin = std::string(args->file != nullptr ? args->file : "?") + ":" + std::to_string(args->line);
  if (message.starts_with("Handshake failed")) {
    log(LogLevel::warn, "tls_handshake_failed",
        {LogField::word("event", "auth_rejected"), LogField::word("source", "grpc"),
         LogField::text("reason", message, 256)});
    return;
  }
  LogLevel level = LogLevel::debug;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_ERROR: level = LogLevel::error; break;
    case GPR_LOG_SEVERITY_INFO: level = LogLevel::info; break;
    case GPR_LOG_SEVERITY_DEBUG: level = LogLevel::debug; break;
  }
  log(level, message, {LogField::word("source", "grpc"), LogField::text("origin", origin)});
}

}  // namespace

void send_grpc_logs_to_server_log() { gpr_set_log_function(write_grpc_line); }

}  // namespace tools_server
