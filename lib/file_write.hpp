// SPDX-License-Identifier: Apache-2.0
// The built-in file_write tool.
#pragma once

#include <cstdint>

#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec::detail {

/// Largest content file_write accepts.
inline constexpr std::uint64_t max_file_write_bytes = 16ULL * 1024 * 1024;

/// Writes request.args[1] to request.args[0], a path relative to SANDBOX_DIR/<twin>/, creating
/// folders as needed, refusing symlinks and "..". Fills `outcome` (exit 0, one stdout line).
/// Errc::invalid_request for wrong arguments or a path leaving the workspace; Errc::io.
[[nodiscard]] Result<Outcome> run_file_write(const Sandbox& sandbox, const Request& request, Outcome outcome);

}  // namespace pagi_exec::detail
