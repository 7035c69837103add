// SPDX-License-Identifier: Apache-2.0
// Holding a namespace: one made by a short-lived child, kept alive by a descriptor.
#pragma once

#include <cstdint>

#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// What a namespace-building child reports: the step that failed (0: none), which entry of the
/// step's list, and errno. Its meaning belongs to the caller.
struct BuildReport {
  std::int32_t step = 0;
  std::int32_t item = 0;
  std::int32_t err = 0;
};

/// A held namespace, or the child's report of why it could not build it.
struct HeldNamespace {
  unique_fd ns;  ///< valid when failed.step is 0
  BuildReport failed;
};

/// Runs in the child, inside its new namespaces: async-signal-safe (the parent may be
/// multithreaded), so it allocates nothing and returns what it did as a BuildReport.
using BuildInChild = BuildReport (*)(const void* arg) noexcept;

/// Clones a child into new namespaces (`clone_flags`, e.g. CLONE_NEWNS) that runs `build(arg)`
/// there and reports; the parent then opens /proc/<child>/ns/<ns_name>, which keeps the namespace
/// alive once the child is gone (namespaces(7)), and kills and reaps the child. Errc::sandbox_setup
/// when the child cannot be made, dies without a report, or its namespace cannot be opened; a
/// report of a failed step comes back in HeldNamespace::failed.
[[nodiscard]] Result<HeldNamespace> hold_namespace(unsigned long clone_flags, const char* ns_name, BuildInChild build,
                                                   const void* arg);

}  // namespace pagi_exec::sys
