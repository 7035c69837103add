// SPDX-License-Identifier: Apache-2.0
// choose_isolation: the strongest isolation that works here, probed once at start-up.
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

Result<IsolationChoice> choose_isolation(const SandboxSpec& spec) {
  std::string reason;
  for (const auto kind : {Isolation::native, Isolation::bwrap}) {
    auto candidate = spec;
    candidate.isolation = kind;
    auto sandbox = Sandbox::make(candidate);
    const auto works = sandbox ? check_isolation(*sandbox) : Result<void>(tl::unexpected(sandbox.error()));
    if (works) return IsolationChoice{std::move(*sandbox), reason + to_string(kind) + " works here"};
    reason += std::string(to_string(kind)) + " does not work here (" + works.error().message() + "); ";
  }
  auto candidate = spec;
  candidate.isolation = Isolation::cwd;
  auto sandbox = Sandbox::make(candidate);
  if (!sandbox) return tl::unexpected(sandbox.error());
  return IsolationChoice{std::move(*sandbox), reason + "cwd, which contains nothing but the process tree"};
}

}  // namespace pagi_exec
