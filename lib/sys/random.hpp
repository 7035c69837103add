// SPDX-License-Identifier: Apache-2.0
// Random identifiers from the kernel's CSPRNG.
#pragma once

#include <string>

namespace pagi_exec::sys {

/// A fresh random UUID (version 4, RFC 4122 variant) in its 36-character text form.
/// Reads getrandom(2); blocks only before the kernel's pool is initialised at boot.
[[nodiscard]] std::string new_uuid_v4();

}  // namespace pagi_exec::sys
