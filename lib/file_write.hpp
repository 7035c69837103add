// SPDX-License-Identifier: Apache-2.0
// The built-in file_write tool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pagi_exec/detail/file_write_args.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/spawner.hpp"

namespace pagi_exec::detail {

class WorkspaceMeter;

/// Writes request.args[1] to request.args[0], a path relative to SANDBOX_DIR/<twin>/, creating
/// folders as needed, refusing symlinks, "..", and targets that are not regular files (FIFOs,
/// sockets, devices, folders). Fills `outcome` (exit 0, one stdout line), or refuses in-band a
/// write that would take the workspace over `quota_bytes` (0: none; see refused_by_quota).
/// Errc::invalid_request for wrong arguments, a path leaving the workspace or a target that is
/// not a regular file; Errc::io.
[[nodiscard]] Result<Outcome> run_file_write(WorkspaceMeter& workspaces, const Request& request,
                                             std::uint64_t quota_bytes, const std::optional<Credentials>& owner,
                                             Outcome outcome);

/// An allowed request refused because of the workspace quota: not run, exit code 1,
/// limit_hit workspace_quota, `reason` as the message and the one stderr line.
[[nodiscard]] Outcome refused_by_quota(Outcome outcome, std::string reason);

}  // namespace pagi_exec::detail
