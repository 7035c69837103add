// SPDX-License-Identifier: Apache-2.0
// Who cwd and bwrap commands run as: one decision, used by the launch plan and the folders.
#pragma once

#include <optional>

#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

/// The sandbox's uid/gid when this process is root and `spec.run_as_root` is off: commands drop
/// to them. nullopt otherwise: a server that is not root cannot change uid, so its commands run
/// as the server's own uid; run_as_root keeps the server's uid on purpose.
[[nodiscard]] std::optional<Credentials> command_credentials(const SandboxSpec& spec);

}  // namespace pagi_exec::sys
