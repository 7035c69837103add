// SPDX-License-Identifier: Apache-2.0
// Hostile input for the parsers a twin or an operator feeds: random and mutated bytes through the
// shell scanner, the policy decision and the policy-file parser must always return, never crash,
// and keep their invariants. Deterministic (fixed seeds): a failure reproduces.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

using namespace pagi_exec;

namespace {

// Random text biased towards the characters that matter to sh and TOML.
std::string random_text(std::mt19937& rng, std::size_t max_len) {
  static constexpr std::string_view alphabet =
      "abcdefrmshxyz019 \t\n;|&()<>{}[]$`'\"\\#=*!.,/-_:~\x01\xc3\xa9\xff";
  std::uniform_int_distribution<std::size_t> length(0, max_len), pick(0, alphabet.size() - 1);
  std::string text(length(rng), ' ');
  for (auto& c : text) c = alphabet[pick(rng)];
  return text;
}

// `seed` with a few random bytes replaced, inserted or removed.
std::string mutate(std::mt19937& rng, std::string seed) {
  std::uniform_int_distribution<int> op(0, 2), byte(0, 255), count(1, 4);
  for (int n = count(rng); n > 0; --n) {
    std::uniform_int_distribution<std::size_t> at(0, seed.size());
    const auto i = at(rng);
    switch (op(rng)) {
      case 0: if (i < seed.size()) seed[i] = static_cast<char>(byte(rng)); break;
      case 1: seed.insert(seed.begin() + static_cast<std::ptrdiff_t>(i), static_cast<char>(byte(rng))); break;
      default: if (i < seed.size()) seed.erase(i, 1); break;
    }
  }
  return seed;
}

}  // namespace

TEST_SUITE("robustness") {
  TEST_CASE("the shell scanner and the policy survive 20000 random command lines") {
    std::mt19937 rng(2026);
    const auto policy = Policy::seed_default();
    int refused = 0;
    for (int i = 0; i < 20000; ++i) {
      const auto line = random_text(rng, 80);
      const auto scan = scan_shell(line);
      for (const auto& word : scan.command_words) CHECK_FALSE(word.empty());
      const auto decision = policy.decide({.tool = "command_exec", .args = {line}, .twin_id = "twin-sentinel"});
      CHECK_FALSE(decision.reason.empty());
      CHECK_FALSE(decision.rule.empty());
      // Whatever the line, a refused program on a line of its own is never let through silently:
      // refused, or allowed only with a note saying what could not be judged (an open quote
      // would make sh read "rm" as text, for one).
      const auto with_rm = policy.decide({.tool = "command_exec", .args = {line + "\n\nrm -rf /"}, .twin_id = "twin-sentinel"});
      if (with_rm.allowed) {
        REQUIRE_FALSE(with_rm.notes.empty());
        CHECK(with_rm.notes.front().rfind("unjudgeable: ", 0) == 0);
      }
      refused += decision.allowed ? 0 : 1;
    }
    MESSAGE(refused << " of 20000 random lines refused");
  }

  TEST_CASE("the policy-file parser survives 5000 mutations of the example file") {
    const char* examples = std::getenv("PAGI_EXEC_EXAMPLES");
    REQUIRE(examples != nullptr);
    std::ifstream in(std::string(examples) + "/policy.toml");
    const std::string example((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE_FALSE(example.empty());
    std::mt19937 rng(1129);
    int accepted = 0;
    for (int i = 0; i < 5000; ++i) {
      const auto text = mutate(rng, example);
      const auto parsed = parse_policy(text, "mutant.toml");
      if (parsed) {
        ++accepted;  // whatever it grants is a valid policy: twin names are safe folder names
        for (const auto& [twin, grants] : parsed->policy.spec().twins) CHECK(why_not_path_component(twin).empty());
      } else {
        CHECK(parsed.error().code == Errc::invalid_config);
        CHECK(parsed.error().message().rfind("mutant.toml:", 0) == 0);
      }
    }
    MESSAGE(accepted << " of 5000 mutants still parsed");
  }
}
