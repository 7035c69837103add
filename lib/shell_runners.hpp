// SPDX-License-Identifier: Apache-2.0
// Internal to scan_shell: words, and programs that run other programs (sudo, sh -c, eval, ...).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagi_exec::detail {

/// One shell word as the scanner read it.
struct ShellWord {
  std::string text;      ///< value after quote removal; for expansions, their source text
  std::string raw;       ///< as written
  bool quoted = false;   ///< held quotes or backslashes: never a reserved word
  bool expands = false;  ///< holds a $-expansion or command substitution: value known only at run time
  bool globs = false;    ///< holds an unquoted * ? [...] or {...}: may become another name
};

/// Where follow_runners reports what it finds: the scanner of the line being read.
class RunnerSink {
 public:
  virtual void note(std::string what) = 0;            ///< something unjudgeable
  virtual void command_word(std::string word) = 0;    ///< a program that will run
  virtual void sub_scan(std::string_view text) = 0;   ///< a string that runs as shell code

 protected:
  RunnerSink() = default;
  RunnerSink(const RunnerSink&) = default;
  RunnerSink& operator=(const RunnerSink&) = default;
  ~RunnerSink() = default;
};

/// `raw` made printable and short for a note: control characters escaped, at most 40 bytes.
[[nodiscard]] std::string snippet(std::string_view raw);

/// True for `NAME=...`, `NAME+=...` and `NAME[i]=...` with an unquoted NAME (XCU 2.9.1).
[[nodiscard]] bool is_assignment(std::string_view raw) noexcept;

/// Reports `word` in command position: as a command word when its value is known, else as a note.
/// True when it was reported as a command word.
bool judge_word(RunnerSink& sink, const ShellWord& word);

/// When `program` runs other programs (a wrapper, a shell, eval, find -exec, an interpreter),
/// reports what it runs from `args`, or notes what cannot be judged.
void follow_runners(RunnerSink& sink, std::string_view program, const std::vector<ShellWord>& args);

}  // namespace pagi_exec::detail
