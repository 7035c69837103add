// SPDX-License-Identifier: Apache-2.0
// Who cwd and bwrap commands run as.
#include "sys/run_as.hpp"

#include <unistd.h>

namespace pagi_exec::sys {

std::optional<Credentials> command_credentials(const SandboxSpec& spec) {
  if (spec.run_as_root || ::geteuid() != 0) return std::nullopt;
  return Credentials{.uid = spec.sandbox_uid, .gid = spec.sandbox_gid};
}

}  // namespace pagi_exec::sys
