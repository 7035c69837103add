// SPDX-License-Identifier: Apache-2.0
// Request: what a twin asks to run, as plain data.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pagi_exec {

/// One request from a twin, as received on the wire. Plain data: any value is representable,
/// validation happens in Command::make and Policy::decide.
struct Request {
  std::string tool{};              ///< logical tool or program: "command_exec", "echo", "/bin/ls"
  std::vector<std::string> args{};  ///< arguments after the tool
  std::string twin_id{};           ///< the agent asking (as claimed; see README on authentication)
  std::string job_id{};            ///< caller's correlation id, recorded only
  std::string ns{};                ///< caller's namespace, recorded only
  std::map<std::string, std::string> metadata{};  ///< recorded only
  /// Caps the sandbox's time limit for this request (e.g. from an RPC deadline); never raises it.
  std::optional<std::chrono::milliseconds> timeout_cap{};
  /// The twin the host has proven the caller to be (token, client certificate), set by the host
  /// after authentication, never from the wire; recorded in the audit log. nullopt: none proven.
  std::optional<std::string> authenticated_twin{};

  bool operator==(const Request&) const = default;
};

}  // namespace pagi_exec
