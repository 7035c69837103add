// SPDX-License-Identifier: Apache-2.0
// compile_argument_rules: a small assembler with forward labels, and the conditions in it.
#include "sys/seccomp_arguments.hpp"

#include <linux/seccomp.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>

namespace pagi_exec::sys {
namespace {

using seccomp_rules::Cond;
using seccomp_rules::Test;

// Where the low 32 bits of argument `arg` sit in struct seccomp_data (BPF loads 32-bit words).
constexpr std::uint32_t low_word_of(unsigned arg) noexcept {
  constexpr std::uint32_t high_first = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 4 : 0;
  return static_cast<std::uint32_t>(offsetof(seccomp_data, args)) + 8 * arg + high_first;
}

// Classic BPF with labels that are bound later; every jump goes forward.
class Assembler {
 public:
  using Label = std::size_t;

  Label label() {
    targets_.push_back(unbound);
    return targets_.size() - 1;
  }
  void bind(Label at) { targets_[at] = code_.size(); }

  void load(std::uint32_t offset) { code_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
  void ret(std::uint32_t action) { code_.push_back(BPF_STMT(BPF_RET | BPF_K, action)); }
  // if (A <op> k) goto yes; else goto no   (op: BPF_JEQ or BPF_JSET)
  void branch(std::uint16_t op, std::uint32_t k, Label yes, Label no) {
    jumps_.push_back({code_.size(), yes, no});
    code_.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
  }
  void jump(Label to) {
    jumps_.push_back({code_.size(), to, to});
    code_.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
  }

  Result<std::vector<sock_filter>> finish() {
    for (const auto& j : jumps_) {
      auto& insn = code_[j.at];
      const auto yes = distance(j.at, j.yes);
      const auto no = distance(j.at, j.no);
      if (!yes || !no) return fail(Errc::internal, "seccomp argument prefix: a jump to an unbound label");
      if (BPF_OP(insn.code) == BPF_JA) {
        insn.k = static_cast<std::uint32_t>(*yes);
        continue;
      }
      if (*yes > std::numeric_limits<std::uint8_t>::max() || *no > std::numeric_limits<std::uint8_t>::max()) {
        return fail(Errc::internal, "seccomp argument prefix: a conditional jump longer than 255 instructions");
      }
      insn.jt = static_cast<std::uint8_t>(*yes);
      insn.jf = static_cast<std::uint8_t>(*no);
    }
    return std::move(code_);
  }

 private:
  static constexpr std::size_t unbound = std::numeric_limits<std::size_t>::max();
  struct Jump {
    std::size_t at;
    Label yes, no;
  };
  // Instructions to skip from the one after `at` to `target`.
  std::optional<std::size_t> distance(std::size_t at, Label target) const {
    if (targets_[target] == unbound || targets_[target] <= at) return std::nullopt;
    return targets_[target] - at - 1;
  }
  std::vector<sock_filter> code_;
  std::vector<std::size_t> targets_;
  std::vector<Jump> jumps_;
};

// Emits `cond` on its argument: to `yes` when it holds, to `no` when not.
void emit(Assembler& a, const Cond& cond, Assembler::Label yes, Assembler::Label no) {
  if (cond.test == Test::any) {
    a.jump(yes);
    return;
  }
  a.load(low_word_of(cond.arg));
  if (cond.test == Test::any_bit_of) {
    a.branch(BPF_JSET, cond.values[0], yes, no);
    return;
  }
  // One equality per listed value: a match decides, a miss tries the next value.
  const bool listed_holds = cond.test == Test::low32_in;
  for (std::size_t i = 0; i < cond.count; ++i) {
    const auto next = a.label();
    const bool last = i + 1 == cond.count;
    a.branch(BPF_JEQ, cond.values[i], listed_holds ? yes : no, last ? (listed_holds ? no : yes) : next);
    a.bind(next);
  }
}

}  // namespace

Result<std::vector<sock_filter>> compile_argument_rules(std::uint32_t arch, const std::vector<ArgumentRule>& rules) {
  Assembler a;
  const auto past = a.label();
  const auto native = a.label();
  a.load(offsetof(seccomp_data, arch));
  a.branch(BPF_JEQ, arch, native, past);  // a foreign ABI is the following program's to kill
  a.bind(native);
  a.load(offsetof(seccomp_data, nr));
  // Dispatch on the number (x32's, with bit 0x40000000, matches none of these).
  std::vector<int> numbers;
  for (const auto& r : rules) {
    if (std::find(numbers.begin(), numbers.end(), r.number) == numbers.end()) numbers.push_back(r.number);
  }
  std::vector<Assembler::Label> blocks;
  for (const int number : numbers) {
    blocks.push_back(a.label());
    const auto next = a.label();
    a.branch(BPF_JEQ, static_cast<std::uint32_t>(number), blocks.back(), next);
    a.bind(next);
  }
  a.jump(past);
  // Per syscall, its rules in table order; the first that holds refuses the call.
  for (std::size_t n = 0; n < numbers.size(); ++n) {
    a.bind(blocks[n]);
    for (const auto& r : rules) {
      if (r.number != numbers[n]) continue;
      const auto refuse = a.label();
      const auto second = a.label();
      const auto next_rule = a.label();
      emit(a, r.rule.when, second, next_rule);
      a.bind(second);
      emit(a, r.rule.and_when, refuse, next_rule);
      a.bind(refuse);
      a.ret(SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(r.rule.err) & SECCOMP_RET_DATA));
      a.bind(next_rule);
    }
    a.jump(past);
  }
  a.bind(past);
  return a.finish();
}

}  // namespace pagi_exec::sys
