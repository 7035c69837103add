// SPDX-License-Identifier: Apache-2.0
// load_host_policy: the policy and tool catalog a host's settings put in effect.
#pragma once

#include "pagi_exec/error.hpp"
#include "pagi_exec/host_settings.hpp"
#include "pagi_exec/policy.hpp"

namespace pagi_exec {

/// settings.policy_file (load_policy_file), or the embedded seed matrix and catalog when it is
/// empty; settings.safe_mode forces safe mode on whatever the file says (a file can switch it
/// on too). A twin with network = "host" is Errc::invalid_config unless settings.allow_host_network.
/// Errors are load_policy_file's (file, line and column). Reads the file; thread-safe.
[[nodiscard]] Result<PolicyFile> load_host_policy(const HostSettings& settings);

}  // namespace pagi_exec
