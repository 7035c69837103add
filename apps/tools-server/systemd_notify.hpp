// SPDX-License-Identifier: Apache-2.0
// The server's side of systemd's readiness protocol (sd_notify(3)) for deploy/systemd's
// Type=notify unit.
#pragma once

#include <string_view>

namespace tools_server {

/// Tells the service manager the server accepts calls: READY=1, and STATUS= "listening on
/// <bound>". Does nothing outside a Type=notify service (no NOTIFY_SOCKET); a failure to send
/// is logged as a warning, never fatal. Thread-safe.
void notify_ready(std::string_view bound);

/// Tells the service manager the server has begun to stop (STOPPING=1), so that `systemctl
/// status` shows "deactivating" while calls drain. Same conditions as notify_ready.
void notify_stopping();

}  // namespace tools_server
