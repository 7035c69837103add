// SPDX-License-Identifier: Apache-2.0
// load_host_policy: the policy file or the seed, with safe mode forced by the host's settings.
#include "pagi_exec/host_policy.hpp"

#include "pagi_exec/policy_file.hpp"

namespace pagi_exec {

Result<PolicyFile> load_host_policy(const HostSettings& settings) {
  auto file = settings.policy_file.empty() ? Result<PolicyFile>(PolicyFile{Policy::seed_default(), ToolCatalog::seed_default()})
                                           : load_policy_file(settings.policy_file);
  // Safe mode forced on stays on whatever the file says; the file can switch it on too.
  return file.map([&](PolicyFile loaded) {
    if (settings.safe_mode && !loaded.policy.safe_mode()) loaded.policy = loaded.policy.with_safe_mode(true);
    return loaded;
  });
}

}  // namespace pagi_exec
