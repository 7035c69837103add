// SPDX-License-Identifier: Apache-2.0
// Records with descriptors attached (SCM_RIGHTS) on a SOCK_SEQPACKET socket: how the server and
// the spawn helper hand each other a run's descriptors.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// One record and at most max_run_fds descriptors. Returns the bytes received (0: hang-up), -1
/// on error (errno); the descriptors land in `fds`, close-on-exec. `truncated`: the record or
/// its descriptors did not fit.
ssize_t receive_with_fds(int socket, void* data, std::size_t size, std::vector<unique_fd>& fds, bool& truncated);

/// One record with `count` (at most max_run_fds) descriptors; never raises SIGPIPE. 0 or errno.
int send_with_fds(int socket, const void* data, std::size_t size, const int* fds, std::size_t count);

}  // namespace pagi_exec::sys
