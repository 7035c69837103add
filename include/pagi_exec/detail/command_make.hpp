// SPDX-License-Identifier: Apache-2.0
// Command::make: a Request checked (NUL bytes, sizes) and made definite (catalog, argv, PATH) once.
// Included by command.hpp.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "pagi_exec/command.hpp"
#include "pagi_exec/detail/file_write_args.hpp"
#include "pagi_exec/detail/program_lookup.hpp"
#include "pagi_exec/program_name.hpp"

// Why it is built this way: execve(2) takes C strings, so "/bin/rm\0x" runs /bin/rm while every
// std::string comparison sees a name that is not "rm". Rather than teach each check about NUL
// bytes, no Command holds one: the request is refused before anything looks at it. The argv is
// built here and nowhere else, so the Policy and the launcher cannot read two different things.

namespace pagi_exec::detail::command_make {

// The position of the first NUL byte of `text`, or npos.
inline std::size_t nul_at(std::string_view text) noexcept {
  const void* hit = std::memchr(text.data(), '\0', text.size());
  return hit == nullptr ? std::string_view::npos : static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
}

inline std::string nul_problem(const std::string& field, std::size_t at) {
  return field + " contains a NUL byte (at offset " + std::to_string(at) +
         "): a program would see the text cut short there, so the request is refused; remove the NUL byte";
}

inline std::uint64_t request_bytes(const Request& request) noexcept {
  std::uint64_t bytes = request.tool.size() + request.twin_id.size() + request.job_id.size() + request.ns.size();
  for (const auto& arg : request.args) bytes += arg.size();
  for (const auto& [key, value] : request.metadata) bytes += key.size() + value.size();
  return bytes;
}

// argv[0] resolved in the sandbox's PATH when it is a bare name, as execvp(3) would.
inline ProgramLookup resolve(std::string& program) {
  if (program.find('/') != std::string::npos || program_name(program).empty()) return ProgramLookup::as_given;
  const auto found = find_in_path(program, sandbox_path);
  switch (found.found) {
    case PathLookup::Found::executable: program = found.path; return ProgramLookup::found;
    case PathLookup::Found::not_executable: program = found.path; return ProgramLookup::not_executable;
    case PathLookup::Found::missing: return ProgramLookup::missing;
  }
  return ProgramLookup::missing;
}

}  // namespace pagi_exec::detail::command_make

namespace pagi_exec {

inline std::string why_not_request(const Request& request, const RequestLimits& limits) {
  using namespace detail::command_make;
  // Sizes first: they bound the work of everything after (the NUL scan, the shell scanner).
  if (request.args.size() > limits.max_args) {
    return "the request has " + std::to_string(request.args.size()) + " args; at most " +
           std::to_string(limits.max_args) + " are accepted (TOOLS_MAX_ARGS)";
  }
  if (const auto bytes = request_bytes(request); bytes > limits.max_request_bytes) {
    return "the request carries " + std::to_string(bytes) + " bytes (command, args, ids and metadata together); at most " +
           std::to_string(limits.max_request_bytes) + " are accepted (TOOLS_MAX_REQUEST_BYTES)";
  }
  const std::pair<const char*, const std::string*> fields[] = {
      {"command", &request.tool}, {"twin_id", &request.twin_id}, {"job_id", &request.job_id}};
  for (const auto& [name, text] : fields) {
    if (const auto at = nul_at(*text); at != std::string_view::npos) return nul_problem(name, at);
  }
  for (std::size_t i = 0; i < request.args.size(); ++i) {
    if (const auto at = nul_at(request.args[i]); at != std::string_view::npos) {
      return nul_problem("args[" + std::to_string(i) + "]", at);
    }
  }
  return {};
}

inline std::string why_not_call(const Command& command, const Request& request) {
  switch (command.kind()) {
    case ToolKind::shell_bridge:
      if (command.argv().empty()) {
        return command.tool() + " needs args[0]: the shell command line to run with /bin/sh -c";
      }
      return {};
    case ToolKind::file_write: return detail::why_not_file_write(request);
    case ToolKind::program:
    case ToolKind::unavailable: return {};
  }
  return {};
}

inline Result<Command> Command::make(const Request& request, const ToolCatalog& catalog, const RequestLimits& limits) {
  if (auto why = why_not_request(request, limits); !why.empty()) return fail(Errc::invalid_request, std::move(why));
  Command command;
  command.tool_ = request.tool;
  command.twin_id_ = request.twin_id;
  const ToolEntry* entry = catalog.find(request.tool);
  command.kind_ = entry == nullptr ? ToolKind::program : entry->kind;
  switch (command.kind_) {
    case ToolKind::file_write: return command;
    case ToolKind::unavailable:
      command.note_ = entry->note;
      return command;
    case ToolKind::shell_bridge:
      if (request.args.empty()) return command;  // may be judged (a dry run asks "may I?"), never run
      // The line's own arguments ($1...) follow $0, which names the bridge.
      command.argv_ = {"/bin/sh", "-c", request.args[0], std::string(shell_bridge_tool)};
      command.argv_.insert(command.argv_.end(), request.args.begin() + 1, request.args.end());
      return command;
    case ToolKind::program:
      if (entry != nullptr) {
        command.argv_.push_back(entry->program);
        command.argv_.insert(command.argv_.end(), entry->args.begin(), entry->args.end());
      } else {
        command.argv_.push_back(request.tool);
      }
      command.argv_.insert(command.argv_.end(), request.args.begin(), request.args.end());
      command.lookup_ = detail::command_make::resolve(command.argv_.front());
      return command;
  }
  return fail(Errc::internal, "unknown tool kind");
}

}  // namespace pagi_exec
