// SPDX-License-Identifier: Apache-2.0
// The deny-list's argument conditions, compiled by hand into a short BPF prefix.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "pagi_exec/error.hpp"
#include "sys/seccomp_rule.hpp"

namespace pagi_exec::sys {

/// A rule with an argument condition, and its syscall's number on the native architecture.
struct ArgumentRule {
  int number;
  seccomp_rules::DenyRule rule;
};

/// A BPF prefix deciding `rules` (each with a condition) for the architecture `arch`
/// (AUDIT_ARCH_*): a call a rule refuses returns its errno; any other call (another architecture,
/// another syscall, or one of these whose conditions do not hold) jumps past the prefix, to the
/// program that must follow it and holds every other rule.
///
/// Why by hand: libseccomp 2.5 has no "not equal" on the low 32 bits of an argument, so "the
/// family is none of AF_UNIX, AF_INET, AF_INET6, AF_NETLINK" became ~60 masked comparisons, one per
/// aligned block of the complement: 470 of the filter's 631 instructions. The kernel converts and
/// JIT-compiles every run's filter in proportion to its length (about 85 µs of CPU per native run
/// for those rules alone); here each condition is one comparison per listed value.
/// Errc::internal when the prefix outgrows BPF's 8-bit conditional jumps.
[[nodiscard]] Result<std::vector<sock_filter>> compile_argument_rules(std::uint32_t arch,
                                                                      const std::vector<ArgumentRule>& rules);

}  // namespace pagi_exec::sys
