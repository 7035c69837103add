// SPDX-License-Identifier: Apache-2.0
// A kernel-wide cgroup setting that takes a run's cgroup attach off an RCU grace period.
#pragma once

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

/// Turns on cgroup2's `favordynmods` (Linux 6.0+), which is kernel-wide: moving a process into
/// a cgroup (every run's child joins its cgroup this way, cgroup v1 or v2) then no longer waits
/// for an RCU grace period, at the price of slightly dearer forks and exits on the whole host
/// (Documentation/admin-guide/cgroup-v2.rst). The setting belongs to the cgroup2 hierarchy, so
/// it is made by mounting cgroup2 with the option in a private mount namespace, on a thread of
/// its own that then ends: no mount is ever visible to the host. It lasts until the next
/// cgroup2 mount that omits it, or until reboot on kernels that keep it once set (6.18).
/// Needs CAP_SYS_ADMIN. Errc::sandbox_setup with the reason otherwise.
[[nodiscard]] Result<void> favor_cgroup_moves();

}  // namespace pagi_exec::sys
