// SPDX-License-Identifier: Apache-2.0
// check_isolation and choose_isolation: which isolation works here, probed once at start-up.
#include "pagi_exec/isolation_probe.hpp"

#include <filesystem>
#include <system_error>

#include "launch.hpp"
#include "sys/random.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec {

Result<void> check_isolation(const Sandbox& sandbox) {
  if (sandbox.isolation() == Isolation::cwd) return {};
  if (sandbox.isolation() == Isolation::bwrap) {
    if (const int err = sys::executable_error(sandbox.spec().bwrap_path); err != 0) {
      return fail(Errc::sandbox_setup, "bwrap not usable at " + sandbox.spec().bwrap_path.string(), err);
    }
  }
  std::shared_ptr<const Spawner> spawner = make_process_spawner();
  if (sandbox.isolation() == Isolation::native) {
    auto native = make_native_spawner(sandbox);
    if (!native) return error_of(native);
    spawner = std::move(*native);
  }
  // Probe in a throw-away workspace with exactly the options real executions use. It lives in
  // the sandbox dir (where native mounts workspaces from) under a name no twin id can take.
  const auto id = sys::new_uuid_v4();
  const auto probe_root = sandbox.root_dir() / (".probe-" + id);
  const detail::Placement place{.execution_id = id, .twin_id = "probe",
                                .workspace = probe_root, .execution_dir = probe_root / id};
  std::error_code ec;
  std::filesystem::create_directories(place.execution_dir, ec);
  if (ec) return fail(Errc::sandbox_setup, "create " + place.execution_dir.string(), ec.value());
  std::filesystem::permissions(probe_root, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_exec, ec);
  auto limits = sandbox.limits();
  limits.timeout = std::chrono::seconds(10);
  const auto plan = detail::make_probe_plan(sandbox, {"/bin/true"}, place, limits);
  const auto result = spawner->spawn(plan, {}, {});
  std::filesystem::remove_all(probe_root, ec);
  if (!result) return error_of(result);
  if (result->exec_errno != 0) {
    return fail(Errc::sandbox_setup, "cannot execute " + plan.argv[0], result->exec_errno);
  }
  if (result->exit_code != 0) {
    std::string said = result->err.lines.empty() ? std::string("no message") : result->err.lines.front();
    return fail(Errc::sandbox_setup, std::string(to_string(sandbox.isolation())) + " isolation does not work here (exit " +
                                         std::to_string(result->exit_code) + "): " + said);
  }
  return {};
}

Result<IsolationChoice> choose_isolation(const SandboxSpec& spec) {
  std::string reason;
  for (const auto kind : {Isolation::native, Isolation::bwrap}) {
    auto candidate = spec;
    candidate.isolation = kind;
    auto sandbox = Sandbox::make(candidate);
    const auto works = sandbox.and_then([](const Sandbox& made) { return check_isolation(made); });
    if (works) return IsolationChoice{std::move(*sandbox), reason + to_string(kind) + " works here"};
    reason += std::string(to_string(kind)) + " does not work here (" + works.error().message() + "); ";
  }
  auto candidate = spec;
  candidate.isolation = Isolation::cwd;
  return Sandbox::make(candidate).map([&](Sandbox sandbox) {
    return IsolationChoice{std::move(sandbox), reason + "cwd, which contains nothing but the process tree"};
  });
}

}  // namespace pagi_exec
