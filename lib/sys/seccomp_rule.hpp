// SPDX-License-Identifier: Apache-2.0
// The seccomp deny-list's rule types: which call, under which argument conditions, fails with
// which errno (the table itself is in seccomp.cpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace pagi_exec::sys::seccomp_rules {

// A condition on one syscall argument. The kernel reads int and unsigned-int arguments (socket
// family, netlink protocol, ioctl request, personality) from the low 32 bits of the register and
// ignores the high ones, but seccomp sees all 64 bits. Every value test is therefore a masked
// comparison of the low 32 bits only: setting high bits that the kernel drops cannot slip a value
// past the filter (and does not refuse a value the kernel would read as allowed).
enum class Test : std::uint8_t {
  any,           // no condition
  low32_in,      // the low 32 bits equal one of `values`
  low32_not_in,  // the low 32 bits equal none of `values`
  any_bit_of,    // at least one bit of values[0] is set
};

struct Cond {
  Test test = Test::any;
  unsigned arg = 0;
  std::array<std::uint32_t, 4> values{};
  std::size_t count = 0;
};

// Keeps `values` sorted (insertion), as Test::low32_not_in needs.
constexpr Cond make_cond(Test test, unsigned arg, std::initializer_list<std::uint32_t> values) {
  Cond cond{.test = test, .arg = arg};
  for (const auto value : values) {
    std::size_t i = cond.count++;
    cond.values.at(cond.count - 1) = value;
    for (; i > 0 && cond.values[i - 1] > value; --i) std::swap(cond.values[i - 1], cond.values[i]);
  }
  return cond;
}
constexpr Cond low32_in(unsigned arg, std::initializer_list<std::uint32_t> values) {
  return make_cond(Test::low32_in, arg, values);
}
constexpr Cond low32_not_in(unsigned arg, std::initializer_list<std::uint32_t> values) {
  return make_cond(Test::low32_not_in, arg, values);
}
constexpr Cond any_bit_of(unsigned arg, std::uint32_t bits) { return make_cond(Test::any_bit_of, arg, {bits}); }

// One line of the deny-list: the call is refused with `err` when `when` and `and_when` both hold.
struct DenyRule {
  const char* syscall;
  long number;  // only for calls newer than libseccomp 2.5.4's syscall table; else -1
  Cond when;
  Cond and_when;
  int err;
  const char* why;
};

constexpr DenyRule deny(const char* name, const char* why) { return {name, -1, {}, {}, EPERM, why}; }
constexpr DenyRule deny_if(const char* name, Cond when, const char* why) {
  return {name, -1, when, {}, EPERM, why};
}
constexpr DenyRule deny_if(const char* name, Cond when, Cond and_when, const char* why) {
  return {name, -1, when, and_when, EPERM, why};
}
// A call libseccomp 2.5.4 cannot name, given by its number (one numbering on all architectures
// for syscalls added since Linux 5.1, MIPS and alpha aside).
constexpr DenyRule deny_number(const char* name, long number, const char* why) {
  return {name, number, {}, {}, EPERM, why};
}
constexpr DenyRule enosys(const char* name, const char* why) { return {name, -1, {}, {}, ENOSYS, why}; }

}  // namespace pagi_exec::sys::seccomp_rules
