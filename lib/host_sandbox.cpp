// SPDX-License-Identifier: Apache-2.0
// open_sandbox and the start-up lines about who commands run as.
#include "pagi_exec/host_sandbox.hpp"

#include "pagi_exec/isolation_probe.hpp"

#include <utility>

namespace pagi_exec {
namespace {

// Auto: the strongest isolation that works here; cwd only is a failure when isolation is required.
Result<OpenedSandbox> choose_sandbox(const HostSettings& settings) {
  return choose_isolation(settings.sandbox).and_then([&](IsolationChoice choice) -> Result<OpenedSandbox> {
    if (choice.sandbox.isolation() == Isolation::cwd && settings.isolation_required()) {
      return fail(Errc::sandbox_setup, choice.reason);
    }
    return OpenedSandbox{.sandbox = std::move(choice.sandbox), .reason = "auto: " + choice.reason, .fallback = {},
                         .notices = {}};
  });
}

// The isolation asked for, probed; cwd when it does not work and is not required.
Result<OpenedSandbox> requested_sandbox(const HostSettings& settings, Isolation requested) {
  auto spec = settings.sandbox;
  spec.isolation = requested;
  return Sandbox::make(spec).and_then([&](Sandbox sandbox) -> Result<OpenedSandbox> {
    OpenedSandbox opened{.sandbox = sandbox, .reason = {}, .fallback = {}, .notices = {}};
    if (requested == Isolation::cwd) return opened;
    const auto probe = check_isolation(sandbox);
    if (probe) return opened;
    if (settings.isolation_required()) return fail(Errc::sandbox_setup, probe.error().message());
    auto cwd = sandbox.with_isolation(Isolation::cwd);
    if (!cwd) return error_of(cwd);
    opened.fallback = probe.error().message();
    opened.sandbox = std::move(*cwd);
    opened.notices.push_back(
        {NoticeLevel::warn, "!!! isolation '" + std::string(to_string(requested)) + "' does not work here (" +
                                opened.fallback + "): FALLING BACK TO 'cwd', commands are NOT isolated from the host; "
                                "set TOOLS_REQUIRE_ISOLATION=true to refuse to start instead"});
    return opened;
  });
}

}  // namespace

Result<OpenedSandbox> open_sandbox(const HostSettings& settings) {
  if (!settings.isolation) return choose_sandbox(settings);
  return requested_sandbox(settings, *settings.isolation);
}

Notices command_identity_notices(const HostSettings& settings, Isolation effective, std::uint32_t euid) {
  const auto& spec = settings.sandbox;
  const auto ids = std::to_string(spec.sandbox_uid) + ":" + std::to_string(spec.sandbox_gid);
  const bool root = euid == 0;
  const std::string kind = to_string(effective);
  if (effective == Isolation::native) {
    const auto& pool = spec.native_ids;
    if (root && pool.count != 0) {
      return {{NoticeLevel::info, "native commands run as a uid = gid of their own from TOOLS_UID_POOL (" +
                                      std::to_string(pool.first + 1) + "-" +
                                      std::to_string(pool.first + pool.count - 1) + ")"}};
    }
    return {{NoticeLevel::info, "commands run as " + (root ? ids : "uid " + ids + " of a user namespace")}};
  }
  if (spec.run_as_root) {
    return {{NoticeLevel::warn, "!!! TOOLS_RUN_AS_ROOT=true: " + kind + " commands run as the server's own uid " +
                                    std::to_string(euid) +
                                    (root ? " (ROOT): a command can change the host as root, plant setuid-root files "
                                            "and kill its supervisor; unset TOOLS_RUN_AS_ROOT to run them as " + ids
                                          : "")}};
  }
  if (root) return {{NoticeLevel::info, kind + " commands run as " + ids + " with no supplementary groups and no_new_privs"}};
  return {{NoticeLevel::info, "the server is not root: " + kind + " commands run as its own uid " + std::to_string(euid) +
                                  " (with no_new_privs)"}};
}

}  // namespace pagi_exec
