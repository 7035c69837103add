// SPDX-License-Identifier: Apache-2.0
// scan_shell: a conservative look at a POSIX sh command line, to find every program it names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pagi_exec {

/// ShellScan::unjudgeable holds at most this many notes (a line can hold a million of them).
inline constexpr std::size_t max_scan_notes = 32;

/// What scan_shell found in one sh command line.
struct ShellScan {
  /// The command-position word of every simple command, after quote removal
  /// (`"r"m` gives `rm`, `/bin/rm` stays `/bin/rm`). Includes commands inside `( )`, `{ }`,
  /// `$( )`, backquotes, `<( )`, if/while/for/case bodies, and the program a known wrapper runs
  /// (`sudo rm`, `env X=1 rm`, `xargs rm`, `find -exec rm`, `sh -c 'rm x'`, `eval 'rm x'`: `rm`).
  /// Mostly in source order; the commands of a substitution come before the command holding it.
  std::vector<std::string> command_words{};
  /// What the scanner could not judge, one short description each, without duplicates:
  /// e.g. "command substitution: $(date)", "expansion in command position: $CMD",
  /// "`python3` runs code the scanner cannot read". Empty when the whole line was judged.
  /// At most max_scan_notes entries; the last then says that more were left out.
  std::vector<std::string> unjudgeable{};
  /// The bytes the scan read in all: the input, plus every nested text scanned (sh -c strings,
  /// eval's arguments, here-documents) and every stretch read again. Never more than 4 times
  /// the input plus 64 KiB: past that, nested code is noted as unjudgeable, not followed. This
  /// is what makes the scan linear in its input; tests and benchmarks read it as a work count.
  std::uint64_t work_bytes = 0;

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
[[nodiscard]] inline ShellScan scan_shell(std::string_view line);

/// Judges an argv handed to execve (no shell in between) as scan_shell judges one simple command
/// whose words are exactly these: what argv[0] runs is reported (`sh -c LINE` and `bash -ec LINE`
/// scan LINE as scan_shell would, `sudo rm` reports `rm`, `find . -exec rm` reports `rm`) and what
/// it runs that cannot be read is noted (`python3 -c`, `perl -e`, `env`, `xargs`, `busybox`,
/// `find -delete`). argv[0] itself is not in command_words: the caller judges it. The same
/// guarantees as scan_shell (never fails, any size, pure, thread-safe).
[[nodiscard]] inline ShellScan scan_argv(std::span<const std::string> argv);

}  // namespace pagi_exec

// The implementation: a lexer and a parser over one Scanner.
#include "pagi_exec/detail/shell_lex.hpp"
#include "pagi_exec/detail/shell_parse.hpp"
