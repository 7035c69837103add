// SPDX-License-Identifier: Apache-2.0
// scan_shell: a conservative look at a POSIX sh command line, to find every program it names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagi_exec {

/// What scan_shell found in one sh command line.
struct ShellScan {
  /// The command-position word of every simple command, after quote removal
  /// (`"r"m` gives `rm`, `/bin/rm` stays `/bin/rm`). Includes commands inside `( )`, `{ }`,
  /// `$( )`, backquotes, `<( )`, if/while/for/case bodies, and the program a known wrapper runs
  /// (`sudo rm`, `env X=1 rm`, `xargs rm`, `find -exec rm`, `sh -c 'rm x'`, `eval 'rm x'`: `rm`).
  /// Mostly in source order; the commands of a substitution come before the command holding it.
  std::vector<std::string> command_words;
  /// What the scanner could not judge, one short description each, without duplicates:
  /// e.g. "command substitution: $(date)", "expansion in command position: $CMD",
  /// "`python3` runs code the scanner cannot read". Empty when the whole line was judged.
  std::vector<std::string> unjudgeable;

  bool operator==(const ShellScan&) const = default;
};

/// Splits `line` as /bin/sh would into simple commands (on ; & | && || |& newlines ( ) { } `;;`
/// and the reserved words if then else elif fi do done while until for case esac in !), skips
/// leading assignments (`X=1 cmd`) and redirections (`>/dev/null rm x`, `2>&1`), removes quotes
/// and backslashes, skips comments and here-document bodies, and reports every command word.
///
/// It is a tripwire, not a sandbox: it does not expand variables, globs, aliases or functions,
/// and it cannot know what a program does with its arguments. Such cases go to `unjudgeable`
/// rather than being guessed. Never fails and never throws (except std::bad_alloc); input of any
/// size and nesting is safe (nesting deeper than 16 levels is reported as unjudgeable).
/// Pure and thread-safe.
[[nodiscard]] ShellScan scan_shell(std::string_view line);

}  // namespace pagi_exec
