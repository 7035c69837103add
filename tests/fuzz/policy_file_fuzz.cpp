// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the policy-file reader (parse_policy) on any text, TOML or not.
#include <cstddef>
#include <cstdint>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto parsed = pagi_exec::parse_policy(text, "fuzz.toml");
  if (!parsed) {
    fuzz::check(parsed.error().code == pagi_exec::Errc::invalid_config, "a bad policy file is invalid_config");
    fuzz::check(parsed.error().message().find("fuzz.toml") != std::string::npos, "the message names the file");
    return 0;
  }
  // What the reader accepts, Policy::make accepts too: the reader never builds a policy its own
  // validation would refuse.
  const auto remade = pagi_exec::Policy::make(parsed->policy.spec());
  fuzz::check(remade.has_value(), "a parsed policy validates");
  fuzz::check(*remade == parsed->policy, "validating a parsed policy changes nothing");
  fuzz::check(pagi_exec::parse_policy(text, "fuzz.toml") == parsed, "parsing is pure");
  return 0;
}
