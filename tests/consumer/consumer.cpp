// SPDX-License-Identifier: Apache-2.0
// A host program built only from the installed headers and pkg-config: decides one request.
#include <pagi_exec/pagi_exec.hpp>

#include <cstdio>

int main() {
  const auto policy = pagi_exec::Policy::seed_default();
  const auto decision = policy.decide({.tool = "/bin/rm", .twin_id = "twin-aegis"});
  std::printf("%s %s\n", decision.allowed ? "allowed" : "refused", pagi_exec::version);
  return decision.allowed ? 1 : 0;
}
