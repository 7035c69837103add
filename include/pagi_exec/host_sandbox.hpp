// SPDX-License-Identifier: Apache-2.0
// open_sandbox: the sandbox a host's settings ask for, probed once at start-up, with its fallback.
#pragma once

#include <cstdint>
#include <string>

#include "pagi_exec/error.hpp"
#include "pagi_exec/host_settings.hpp"
#include "pagi_exec/notice.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// The sandbox in effect and why.
struct OpenedSandbox {
  Sandbox sandbox;
  /// Why this isolation: "auto: native works here" when it was probed for; empty when it is the
  /// one the settings asked for.
  std::string reason;
  /// Why the isolation asked for does not work here; empty unless the sandbox fell back to cwd.
  std::string fallback;
  Notices notices;  ///< the loud warning of a fallback
};

/// Makes the sandbox of `settings`, probing its isolation once (check_isolation): the one asked
/// for, falling back to cwd unless settings.isolation_required(); with auto (isolation unset)
/// the strongest that works (choose_isolation). Errors: Errc::invalid_config when the sandbox
/// settings are not valid (the message says which); Errc::sandbox_setup when the isolation is
/// required and does not work, the context then being only why (the probe's message; for auto,
/// what each probe found), so that each host can name its own setting. Spawns processes: meant
/// for start-up.
[[nodiscard]] Result<OpenedSandbox> open_sandbox(const HostSettings& settings);

/// Who commands run as, said once at start-up (loudly when it is the host's own root), for a
/// host whose effective uid is `euid` running commands with `effective` isolation.
[[nodiscard]] Notices command_identity_notices(const HostSettings& settings, Isolation effective, std::uint32_t euid);

}  // namespace pagi_exec
