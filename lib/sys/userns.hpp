// SPDX-License-Identifier: Apache-2.0
// User namespaces: the uid/gid maps of a user-namespaced native init (parent side).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

/// Maps `uid`/`gid` inside the user namespace of `pid` to our own uid/gid (one id each), after
/// denying setgroups, which an unprivileged gid_map requires (user_namespaces(7)).
/// Errc::sandbox_setup naming the /proc file that could not be written.
[[nodiscard]] Result<void> write_id_maps_from_parent(pid_t pid, std::uint32_t uid, std::uint32_t gid);

}  // namespace pagi_exec::sys
