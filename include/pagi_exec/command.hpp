// SPDX-License-Identifier: Apache-2.0
// Command: a Request normalised once; the only form the Policy judges and the launcher runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/tool_catalog.hpp"

namespace pagi_exec {

/// What one request may carry. Beyond these it is refused before anything judges or runs it.
struct RequestLimits {
  static constexpr std::size_t default_max_args = 1024;
  static constexpr std::uint64_t default_max_bytes = 1ULL << 20;

  std::size_t max_args = default_max_args;            ///< arguments after the tool
  /// Every string of the request together: tool, args, twin_id, job_id, namespace, metadata.
  std::uint64_t max_request_bytes = default_max_bytes;
  bool operator==(const RequestLimits&) const = default;
};

/// How the program of a ToolKind::program command was found, for a name without '/'.
enum class ProgramLookup : std::uint8_t {
  as_given,        ///< argv[0] holds a '/' (or names nothing): execve gets it as it is
  found,           ///< argv[0] was a bare name and is now the path found in the sandbox's PATH
  missing,         ///< a bare name not in the PATH: the run answers 127
  not_executable,  ///< only found without execute permission: the run answers 126
};

/// A Request made definite: which kind of tool it is and, for programs and the shell bridge,
/// exactly the argv that will be executed. Policy::decide judges a Command and the launcher runs
/// Command::argv(), so what was judged and what runs cannot differ: there is no other argv.
/// Every Command is valid (no NUL byte anywhere a C string would cut it, within the limits).
/// Immutable, copyable and safe to share between threads.
class Command {
 public:
  /// Normalises `request` with `catalog`: the shell bridge becomes {"/bin/sh", "-c", args[0],
  /// "command_exec", args[1]...}; a catalog program becomes its program and fixed arguments, then
  /// the request's args; any other tool is run as a program named by itself, and a bare name is
  /// resolved in the sandbox's PATH here (stat only; nothing is created or run).
  /// Errc::invalid_request with a message naming the field: a NUL byte in command, args[i],
  /// twin_id or job_id; more args or more bytes than `limits`.
  /// An empty command or twin_id is not an error here: the policy refuses them with a reason.
  /// Nor is command_exec without args[0]: it has no argv, may be judged, and cannot run.
  [[nodiscard]] static inline Result<Command> make(const Request& request, const ToolCatalog& catalog,
                                            const RequestLimits& limits = {});

  [[nodiscard]] ToolKind kind() const noexcept { return kind_; }
  /// The tool as asked (what allow lists name): "command_exec", "ls", "/bin/ls", "git_status".
  [[nodiscard]] const std::string& tool() const noexcept { return tool_; }
  [[nodiscard]] const std::string& twin_id() const noexcept { return twin_id_; }
  /// Programs and the shell bridge: the argv execve receives (argv[0] is the program). Empty for
  /// built-in tools (file_write), unavailable ones and a shell bridge without a line.
  [[nodiscard]] const std::vector<std::string>& argv() const noexcept { return argv_; }
  /// The shell bridge's command line (argv()[2]); empty for other kinds.
  [[nodiscard]] std::string_view shell_line() const noexcept {
    return kind_ == ToolKind::shell_bridge && !argv_.empty() ? std::string_view(argv_[2]) : std::string_view();
  }
  [[nodiscard]] ProgramLookup lookup() const noexcept { return lookup_; }
  /// ToolKind::unavailable: why, and how to provide it (from the catalog).
  [[nodiscard]] const std::string& note() const noexcept { return note_; }

  bool operator==(const Command&) const = default;

 private:
  Command() = default;
  ToolKind kind_ = ToolKind::program;
  std::string tool_;
  std::string twin_id_;
  std::vector<std::string> argv_;
  ProgramLookup lookup_ = ProgramLookup::as_given;
  std::string note_;
};

/// Why `request` cannot be normalised, or empty: the checks of Command::make that do not depend
/// on a catalog (NUL bytes, sizes). The message names the field: "args[2] contains a NUL byte ...".
[[nodiscard]] inline std::string why_not_request(const Request& request, const RequestLimits& limits = {});

/// Why `request`, normalised as `command`, cannot run as asked, or empty: the argument rules of
/// its tool, checked without touching anything (the shell bridge needs args[0]; file_write takes
/// exactly a workspace-relative path and the content, within its size limit). The message says
/// what to change, for the caller (a model) to correct itself.
[[nodiscard]] inline std::string why_not_call(const Command& command, const Request& request);

}  // namespace pagi_exec

#include "pagi_exec/detail/command_make.hpp"
