// SPDX-License-Identifier: Apache-2.0
// file_write: the one tool pagi-exec runs itself, in the server, never through a process.
#include "file_write.hpp"

#include "workspace_meter.hpp"

namespace pagi_exec::detail {

Outcome refused_by_quota(Outcome outcome, std::string reason) {
  outcome.ran = false;
  outcome.exit_code = 1;
  outcome.limit_hit = LimitHit::workspace_quota;
  outcome.err.lines = {reason};
  outcome.err.total_bytes = reason.size() + 1;
  outcome.message = std::move(reason);
  return outcome;
}

Result<Outcome> run_file_write(WorkspaceMeter& workspaces, const Request& request, std::uint64_t quota_bytes,
                               const std::optional<Credentials>& owner, Outcome outcome) {
  if (auto why = why_not_file_write(request); !why.empty()) return fail(Errc::invalid_request, std::move(why));
  const auto& path = request.args[0];
  const auto& content = request.args[1];
  const auto written = workspaces.write(request.twin_id, path, content, quota_bytes, owner);
  if (!written) return error_of(written);
  if (quota_bytes != 0) outcome.workspace = written->usage;
  if (written->refused) return refused_by_quota(std::move(outcome), written->reason);
  outcome.ran = true;
  outcome.exit_code = 0;
  outcome.message = "wrote " + std::to_string(written->written) + " bytes to " + path;
  outcome.out.lines = {outcome.message};
  outcome.out.total_bytes = outcome.message.size() + 1;
  return outcome;
}

}  // namespace pagi_exec::detail
