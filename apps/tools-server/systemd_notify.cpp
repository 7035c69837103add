// SPDX-License-Identifier: Apache-2.0
// sd_notify(3) calls, or nothing when the server was built without libsystemd (then
// deploy/systemd's unit is installed as Type=simple: systemd counts the server ready once started).
#include "systemd_notify.hpp"

#include <cstring>
#include <string>

#include "log.hpp"

#if TOOLS_SERVER_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace tools_server {
namespace {

// sd_notify keeps NOTIFY_SOCKET in the environment (unset_environment = 0): STOPPING=1 is sent
// later through the same variable. Commands never see it: their environment is built from the
// policy, not inherited. sd_notify returns 0 when NOTIFY_SOCKET is not set.
void notify(const std::string& state) {
#if TOOLS_SERVER_HAVE_LIBSYSTEMD
  if (const int sent = sd_notify(0, state.c_str()); sent < 0) {
    log(LogLevel::warn, "sd_notify '" + state.substr(0, state.find('\n')) + "' failed: " + std::strerror(-sent));
  }
#else
  static_cast<void>(state);
#endif
}

}  // namespace

void notify_ready(std::string_view bound) { notify("READY=1\nSTATUS=listening on " + std::string(bound)); }

void notify_stopping() { notify("STOPPING=1\nSTATUS=stopping"); }

}  // namespace tools_server
