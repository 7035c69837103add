// SPDX-License-Identifier: Apache-2.0
// file_write: the one tool pagi-exec runs itself, in the server, never through a process.
#include "file_write.hpp"

#include "pagi_exec/paths.hpp"
#include "sys/run_as.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec::detail {

Result<Outcome> run_file_write(const Sandbox& sandbox, const Request& request, Outcome outcome) {
  if (request.args.size() != 2) {
    return fail(Errc::invalid_request, "file_write needs exactly 2 arguments (a path relative to the "
                                       "twin's workspace, then the content); got " +
                                           std::to_string(request.args.size()));
  }
  const auto& path = request.args[0];
  const auto& content = request.args[1];
  if (auto valid = validate_workspace_path(path); !valid) return tl::unexpected(valid.error());
  if (content.size() > max_file_write_bytes) {
    return fail(Errc::invalid_request, "file_write content is " + std::to_string(content.size()) +
                                           " bytes; the limit is " + std::to_string(max_file_write_bytes));
  }
  // cwd: the file belongs to the uid the twin's commands run as, so they can change it later.
  // Other modes mount the workspace read-only: its files stay the server's.
  const auto owner = sandbox.isolation() == Isolation::cwd ? sys::command_credentials(sandbox.spec()) : std::nullopt;
  const auto written = sys::write_file_beneath(sandbox.root_dir(), request.twin_id, path, content, owner);
  if (!written) return tl::unexpected(written.error());
  outcome.ran = true;
  outcome.exit_code = 0;
  outcome.message = "wrote " + std::to_string(*written) + " bytes to " + path;
  outcome.out.lines = {outcome.message};
  outcome.out.total_bytes = outcome.message.size() + 1;
  return outcome;
}

}  // namespace pagi_exec::detail
