// SPDX-License-Identifier: Apache-2.0
// Where the hosts of this source tree find the pagi-spawner program, built or installed (the
// macros come from apps/pagi-spawner/meson.build through pagi_spawner_location_dep).
#pragma once

#include <pagi_exec/spawner.hpp>

namespace pagi_exec_apps {

/// This build tree's program while the host runs from it; else <host's folder>/../libexec/...
inline pagi_exec::SpawnerLocation spawner_location() {
  return {.build_root = PAGI_EXEC_BUILD_ROOT,
          .built = PAGI_EXEC_SPAWNER_PATH,
          .from_bindir = PAGI_EXEC_SPAWNER_FROM_BINDIR};
}

}  // namespace pagi_exec_apps
