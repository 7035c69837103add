// SPDX-License-Identifier: Apache-2.0
// load_host_policy: the policy file or the seed, with safe mode forced by the host's settings.
#include "pagi_exec/host_policy.hpp"

#include "pagi_exec/policy_file.hpp"

namespace pagi_exec {

Result<PolicyFile> load_host_policy(const HostSettings& settings) {
  auto file = settings.policy_file.empty() ? Result<PolicyFile>(PolicyFile{Policy::seed_default(), ToolCatalog::seed_default()})
                                           : load_policy_file(settings.policy_file);
  // Safe mode forced on stays on whatever the file says; the file can switch it on too.
  return file
      .map([&](PolicyFile loaded) {
        if (settings.safe_mode && !loaded.policy.safe_mode()) loaded.policy = loaded.policy.with_safe_mode(true);
        return loaded;
      })
      .and_then([&](PolicyFile loaded) -> Result<PolicyFile> {
        // The host's whole network is the operator's choice, not the policy author's alone: its
        // loopback holds this server's own port and whatever else listens there.
        if (settings.allow_host_network) return loaded;
        for (const auto& [twin, grants] : loaded.policy.spec().twins) {
          if (grants.network != NetworkAccess::host) continue;
          return fail(Errc::invalid_config,
                      "twins." + twin + ": network = \"host\" gives its runs the host's whole network (its loopback "
                      "services, this server's port, the LAN, cloud metadata), which this server does not allow; "
                      "write network = \"egress\" with allow_domains for named domains, or start the server with "
                      "TOOLS_ALLOW_HOST_NETWORK=true (--allow-host-network) if that is really meant");
        }
        return loaded;
      });
}

}  // namespace pagi_exec
