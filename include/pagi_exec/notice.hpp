// SPDX-License-Identifier: Apache-2.0
// Notice: a line a host should tell its operator; the library never prints it itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pagi_exec {

/// How much a notice matters: the host maps it onto its own log levels.
enum class NoticeLevel : std::uint8_t { error, warn, info };

/// One line for the operator ("!!! isolation 'bwrap' does not work here ..."), in the order it
/// happened; the host logs it its way (the server's log, the CLI's stderr).
struct Notice {
  NoticeLevel level = NoticeLevel::info;
  std::string text;
  bool operator==(const Notice&) const = default;
};

using Notices = std::vector<Notice>;

}  // namespace pagi_exec
