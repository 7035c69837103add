// SPDX-License-Identifier: Apache-2.0
// The parser half of scan_shell: a state machine over tokens that finds command-position words.
// Included by shell_scan.hpp, with the lexer half (shell_lex.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pagi_exec/shell_scan.hpp"
#include "pagi_exec/detail/shell_scanner.hpp"

// Why it is built this way: the scanner decides nothing. It reports the words a shell would run
// and, for everything whose meaning is only known at run time, says so; Policy refuses on the
// first and notes the second. The grammar is not parsed, only tracked: whether the next word is
// in command position (XCU 2.9.1: after assignments and redirections), a reserved word (XCU 2.4),
// a case pattern, a for-loop's word list or a function name. Unbalanced or odd input is read on,
// never rejected: a line sh would refuse as a syntax error runs nothing anyway.

namespace pagi_exec::detail {
namespace parse {

// Reserved words after which a command is still expected (case, for, select, function and esac
// need more than that and are handled apart).
inline constexpr auto reserved_words = std::to_array<std::string_view>(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!"});

}  // namespace parse

// Bounded: past max_scan_notes the rest are summed up in one note, so a line of a million
// substitutions costs a million cheap calls, not a million searches of a growing list.
inline void Scanner::note(std::string what) {
  auto& notes = out_.unjudgeable;
  if (notes.size() >= max_scan_notes) return;
  if (std::find(notes.begin(), notes.end(), what) != notes.end()) return;
  notes.push_back(notes.size() + 1 == max_scan_notes ? std::string(more_notes) : std::move(what));
}

inline void Scanner::command_word(std::string word) { out_.command_words.push_back(std::move(word)); }

inline bool Scanner::charge(std::size_t bytes) {
  if (out_.work_bytes + bytes > budget_) {
    note(std::string(too_much));
    return false;
  }
  out_.work_bytes += bytes;
  return true;
}

inline void Scanner::sub_scan(std::string_view text, bool expansions_only) {
  if (depth_ + 1 > max_scan_depth) return note(std::string(too_deep));
  if (!charge(text.size())) return;
  Scanner inner(text, out_, depth_ + 1, budget_);
  if (expansions_only) inner.scan_expansions();
  else inner.run();
}

inline void Scanner::parse_list(bool nested) {
  CommandList l{.nested = nested};
  for (;;) {
    Token t = next_token();
    if (t.kind == Tok::end) {
      finish(l);
      if (nested) note("unterminated $( or <(");
      return;
    }
    if (const auto op = std::exchange(l.redirect, Tok::end); op != Tok::end && t.kind == Tok::word) {
      if (op != Tok::redirect) heredocs_.push_back({t.word.text, op == Tok::heredoc_tabs, !t.word.quoted});
      continue;  // a redirection's target is never a command
    }
    if (l.array) {
      l.array = t.kind != Tok::rparen;
      continue;
    }
    if (l.function_parens && t.kind != Tok::rparen) {  // `NAME (ls)`: a syntax error; judge both
      finish(l);
      ++l.parens;
      l.expect_command = true;
    }
    if (!l.cases.empty() && l.cases.back() != CasePart::body && on_case_header(l, t)) continue;
    if (t.kind == Tok::rparen && nested && l.parens == 0 && !l.function_parens) {
      finish(l);
      return;
    }
    on_token(l, std::move(t));
  }
}

inline void Scanner::on_token(CommandList& l, Token t) {
  switch (t.kind) {
    case Tok::word: on_word(l, std::move(t.word)); return;
    case Tok::redirect:
    case Tok::heredoc:
    case Tok::heredoc_tabs: l.redirect = t.kind; return;
    case Tok::separator:
    case Tok::case_end:
      finish(l);
      if (t.kind == Tok::case_end && !l.cases.empty()) l.cases.back() = CasePart::pattern;
      l.expect_command = true;
      l.for_header = 0;
      return;
    case Tok::lparen:
      if (l.command && l.args.empty()) {
        l.function_parens = true;
        return;
      }
      finish(l);
      ++l.parens;
      l.expect_command = true;
      l.for_header = 0;
      return;
    case Tok::rparen:
      if (std::exchange(l.function_parens, false)) {
        note("function definition: " + snippet(l.command->raw));
        l.command.reset();
        l.args.clear();
        l.expect_command = true;
        return;
      }
      finish(l);
      if (l.parens > 0) --l.parens;
      l.expect_command = false;
      return;
    case Tok::end: return;
  }
}

// Between `case WORD in` and each `)`, and between `;;` and the next `)` or esac.
inline bool Scanner::on_case_header(CommandList& l, const Token& t) {
  CasePart& part = l.cases.back();
  switch (t.kind) {
    case Tok::word:
      if (part == CasePart::subject) {
        part = CasePart::in;
      } else if (part == CasePart::in) {
        part = CasePart::pattern;
      } else if (!t.word.quoted && t.word.text == "esac") {
        l.cases.pop_back();
        l.expect_command = false;
      }
      return true;
    case Tok::rparen:
      if (part == CasePart::pattern) {
        part = CasePart::body;
        l.expect_command = true;
      }
      return true;
    case Tok::separator:
    case Tok::case_end:
    case Tok::lparen:
    case Tok::redirect:
    case Tok::heredoc:
    case Tok::heredoc_tabs: return true;
    case Tok::end: return false;
  }
  return false;
}

inline void Scanner::on_word(CommandList& l, ShellWord w) {
  if (std::exchange(l.function_name, false)) return note("function definition: " + snippet(w.raw));
  if (l.for_header != 0) {  // `for NAME in WORDS;` or `for NAME do`: none is a command
    const bool is_do = l.for_header == 2 && !w.quoted && w.text == "do";
    l.for_header = is_do ? 0 : std::min(l.for_header + 1, 3);
    return;
  }
  if (!l.expect_command) {
    if (l.command) l.args.push_back(std::move(w));
    return;
  }
  if (is_assignment(w.raw)) {  // X=1 cmd: the command comes next
    l.array = w.raw.back() == '=' && at(pos_) == '(';
    return;
  }
  if (!w.quoted && !w.expands && on_reserved_word(l, w.text)) return;
  l.command = std::move(w);
  l.expect_command = false;
}

// True when `word`, in command position, is a reserved word (XCU 2.4) rather than a command.
inline bool Scanner::on_reserved_word(CommandList& l, const std::string& word) {
  if (word == "case") {
    l.cases.push_back(CasePart::subject);
  } else if (word == "for" || word == "select") {
    l.for_header = 1;
  } else if (word == "function") {
    l.function_name = true;
  } else if (word == "esac") {
    if (!l.cases.empty()) l.cases.pop_back();
    l.expect_command = false;
  } else {
    return std::find(parse::reserved_words.begin(), parse::reserved_words.end(), word) != parse::reserved_words.end();
  }
  return true;
}

inline void Scanner::finish(CommandList& l) {
  if (l.command && judge_word(*this, *l.command)) follow_runners(*this, l.command->text, l.args);
  l.command.reset();
  l.args.clear();
  l.function_parens = false;
}

}  // namespace pagi_exec::detail

namespace pagi_exec {

inline ShellScan scan_shell(std::string_view line) {
  ShellScan out{.work_bytes = line.size()};
  detail::Scanner(line, out, 0, detail::scan_work_budget(line.size())).run();
  return out;
}

inline ShellScan scan_argv(std::span<const std::string> argv) {
  ShellScan out;
  if (argv.empty()) return out;
  // execve words are final: no quotes to remove, nothing expands or globs, no reserved words.
  std::vector<detail::ShellWord> words;
  words.reserve(argv.size() - 1);
  for (const auto& arg : argv.subspan(1)) words.push_back({.text = arg, .raw = arg, .quoted = true});
  std::uint64_t bytes = 0;
  for (const auto& arg : argv) bytes += arg.size();
  out.work_bytes = bytes;
  detail::Scanner sink({}, out, 0, detail::scan_work_budget(bytes));
  detail::follow_runners(sink, argv.front(), words);
  return out;
}

}  // namespace pagi_exec
