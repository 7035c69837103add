// SPDX-License-Identifier: Apache-2.0
// The lexer half of scan_shell: tokens, words, quotes, expansions and here-documents.
// Included by shell_scan.hpp, with the parser half (shell_parse.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "pagi_exec/shell_scan.hpp"
#include "pagi_exec/detail/shell_scanner.hpp"

// The token rules are those of POSIX XCU 2.3 (operators longest first, quotes, expansions found
// while reading a word, here-document bodies after the next newline, XCU 2.7.4), plus the bash
// forms an agent is likely to type: &> &>> |& <<< <( ) >( ) $'...' and `$((` falling back to
// `$( (` when it is not closed by "))", as bash does. Words keep both their value after quote
// removal and their raw text; anything expanded at run time marks the word `expands`.

namespace pagi_exec::detail {
namespace lex {

struct Operator {
  std::string_view text;
  Tok kind;
};

// Longest first: the lexer takes the first entry that matches.
inline constexpr auto operators = std::to_array<Operator>({
    {";;&", Tok::case_end}, {"&>>", Tok::redirect}, {"<<<", Tok::redirect}, {"<<-", Tok::heredoc_tabs},
    {";;", Tok::case_end},  {";&", Tok::case_end},  {"&&", Tok::separator}, {"||", Tok::separator},
    {"|&", Tok::separator}, {"&>", Tok::redirect},  {"<<", Tok::heredoc},   {">>", Tok::redirect},
    {"<&", Tok::redirect},  {">&", Tok::redirect},  {"<>", Tok::redirect},  {">|", Tok::redirect},
    {";", Tok::separator},  {"&", Tok::separator},  {"|", Tok::separator},  {"\n", Tok::separator},
    {"(", Tok::lparen},     {")", Tok::rparen},     {"<", Tok::redirect},   {">", Tok::redirect},
});

inline bool is_metachar(char c) noexcept {
  return std::string_view(" \t\n;&|<>()").find(c) != std::string_view::npos;
}
inline bool is_special_parameter(char c) noexcept {
  return (c >= '0' && c <= '9') || (c != '\0' && std::string_view("@*#?$!-").find(c) != std::string_view::npos);
}
inline bool is_io_number(const ShellWord& w) noexcept {
  return !w.quoted && !w.expands && !w.raw.empty() &&
         std::all_of(w.raw.begin(), w.raw.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace lex

inline Scanner::Nest::Nest(Scanner& s) : scanner_(s), ok_(s.depth_ < max_scan_depth) {
  if (ok_) {
    ++scanner_.depth_;
  } else {
    scanner_.note(std::string(too_deep));
    scanner_.pos_ = scanner_.text_.size();
  }
}

inline Scanner::Nest::~Nest() {
  if (ok_) --scanner_.depth_;
}

inline void Scanner::scan_expansions() {
  ShellWord scratch;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c == '\\') read_escape(scratch);
    else if (c == '$') read_dollar(scratch);
    else if (c == '`') read_backquoted(scratch);
    else ++pos_;
  }
}

inline void Scanner::skip_blanks() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c == ' ' || c == '\t') {
      ++pos_;
    } else if (c == '\\' && at(pos_ + 1) == '\n') {
      pos_ += 2;  // line continuation
    } else if (c == '#') {  // a comment runs to the newline, which stays a token
      const auto nl = text_.find('\n', pos_);
      pos_ = nl == std::string_view::npos ? text_.size() : nl;
    } else {
      return;
    }
  }
}

inline Token Scanner::next_token() {
  skip_blanks();
  if (pos_ >= text_.size()) return {};
  const auto rest = text_.substr(pos_);
  const bool process_substitution = (rest[0] == '<' || rest[0] == '>') && at(pos_ + 1) == '(';
  if (!process_substitution) {
    for (const auto& op : lex::operators) {
      if (!rest.starts_with(op.text)) continue;
      pos_ += op.text.size();
      if (op.text == "\n") read_heredoc_bodies();
      return Token{op.kind, {}};
    }
  }
  ShellWord word = read_word();
  // `2>&1`: digits right before < or > are the redirection's file descriptor, not a word.
  if (lex::is_io_number(word) && (at(pos_) == '<' || at(pos_) == '>') && at(pos_ + 1) != '(') return next_token();
  return Token{Tok::word, std::move(word)};
}

inline ShellWord Scanner::read_word() {
  ShellWord w;
  const auto start = pos_;
  bool brace = false;
  bool bracket = false;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if ((c == '<' || c == '>') && at(pos_ + 1) == '(' && pos_ == start) {
      pos_ += 2;
      nested_list(w, start, "process substitution");
      continue;
    }
    if (lex::is_metachar(c)) break;
    switch (c) {
      case '\\': read_escape(w); break;
      case '\'': read_single(w); break;
      case '"': read_double(w); break;
      case '$': read_dollar(w); break;
      case '`': read_backquoted(w); break;
      default:
        w.globs = w.globs || c == '*' || c == '?' || (c == ']' && bracket);
        brace = brace || c == '{';
        bracket = bracket || c == '[';
        w.text += c;
        ++pos_;
    }
  }
  w.raw = std::string(text_.substr(start, pos_ - start));
  if (brace && w.raw != "{") w.globs = true;  // brace expansion: /bin/{rm,true}
  return w;
}

inline void Scanner::read_escape(ShellWord& w) {
  if (pos_ + 1 >= text_.size()) {
    w.text += '\\';
    ++pos_;
    return;
  }
  if (text_[pos_ + 1] != '\n') w.text += text_[pos_ + 1];  // backslash-newline joins lines
  w.quoted = true;
  pos_ += 2;
}

inline void Scanner::read_single(ShellWord& w) {
  w.quoted = true;
  const auto end = text_.find('\'', pos_ + 1);
  if (end == std::string_view::npos) {
    note("unterminated single quote");
    w.text += text_.substr(pos_ + 1);
    pos_ = text_.size();
    return;
  }
  w.text += text_.substr(pos_ + 1, end - pos_ - 1);
  pos_ = end + 1;
}

inline void Scanner::read_double(ShellWord& w) {
  w.quoted = true;
  ++pos_;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    const char next = at(pos_ + 1);
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c == '\\' && std::string_view("$`\"\\\n").find(next) != std::string_view::npos) {
      if (next != '\n') w.text += next;
      pos_ += 2;
    } else if (c == '$') {
      read_dollar(w);
    } else if (c == '`') {
      read_backquoted(w);
    } else {
      w.text += c;
      ++pos_;
    }
  }
  note("unterminated double quote");
}

inline void Scanner::read_dollar(ShellWord& w) {
  const auto start = pos_;
  const char next = at(pos_ + 1);
  if (next == '(' && at(pos_ + 2) == '(') {
    pos_ += 3;
    // Not closed by "))": bash reads it again as $( ( ... ) ... ). Nested, such re-reads could
    // multiply the work: each is paid for from the budget, and past it the text stays read once.
    if (!read_arithmetic() && charge(pos_ - start)) {
      pos_ = start + 2;
      nested_list(w, start, "command substitution");
    }
  } else if (next == '(') {
    pos_ += 2;
    nested_list(w, start, "command substitution");
  } else if (next == '{') {
    pos_ += 2;
    read_braced();
  } else if (next == '\'') {  // bash $'...': backslash escapes can spell any name
    pos_ += 2;
    while (pos_ < text_.size() && text_[pos_] != '\'') pos_ += text_[pos_] == '\\' ? 2U : 1U;
    if (pos_ >= text_.size()) note("unterminated $'");
    pos_ = std::min(text_.size(), pos_ + 1);
  } else if (is_name_char(next, true)) {
    ++pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_], false)) ++pos_;
  } else if (lex::is_special_parameter(next)) {
    pos_ += 2;
  } else {
    w.text += '$';  // a lone $ is literal
    ++pos_;
    return;
  }
  w.expands = true;
  w.text += text_.substr(start, std::min(pos_, text_.size()) - start);
}

// After "$((": true when closed by "))"; the characters inside are arithmetic, not commands.
inline bool Scanner::read_arithmetic() {
  const Nest nest(*this);
  if (!nest.ok()) return true;
  if (!skip_to_close('(', ')')) {
    note("unterminated $((");
    return true;
  }
  if (at(pos_ + 1) != ')') return false;
  pos_ += 2;
  return true;
}

// After "${": up to the matching "}".
inline void Scanner::read_braced() {
  const Nest nest(*this);
  if (!nest.ok()) return;
  if (skip_to_close('{', '}')) ++pos_;
  else note("unterminated ${");
}

// Moves to the `close` that balances, reading quotes and substitutions on the way (their commands
// are scanned). False when the text ends first.
inline bool Scanner::skip_to_close(char open, char close) {
  ShellWord scratch;
  int depth = 0;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c == close && depth == 0) return true;
    switch (c) {
      case '\\': read_escape(scratch); break;
      case '\'': read_single(scratch); break;
      case '"': read_double(scratch); break;
      case '$': read_dollar(scratch); break;
      case '`': read_backquoted(scratch); break;
      default:
        depth += c == open ? 1 : c == close ? -1 : 0;
        ++pos_;
    }
  }
  return false;
}

inline void Scanner::read_backquoted(ShellWord& w) {
  const auto start = pos_++;
  std::string inner;
  bool closed = false;
  while (pos_ < text_.size() && !closed) {
    const char c = text_[pos_];
    const char next = at(pos_ + 1);
    if (c == '`') {
      closed = true;
      ++pos_;
    } else if (c == '\\' && (next == '`' || next == '\\' || next == '$')) {
      inner += next;
      pos_ += 2;
    } else {
      inner += c;
      ++pos_;
    }
  }
  if (!closed) note("unterminated backquote");
  const auto raw = text_.substr(start, pos_ - start);
  w.expands = true;
  w.text += raw;
  note("command substitution: " + snippet(raw));
  sub_scan(inner, false);
}

// $( ... ) and <( ... ): the commands inside are part of this scan, up to the matching ")".
inline void Scanner::nested_list(ShellWord& w, std::size_t start, std::string_view what) {
  {
    const Nest nest(*this);
    if (nest.ok()) parse_list(true);
  }
  const auto raw = text_.substr(start, pos_ - start);
  w.expands = true;
  w.text += raw;
  note(std::string(what) + ": " + snippet(raw));
}

// Called after a newline token: the pending here-documents' bodies come first (XCU 2.7.4).
inline void Scanner::read_heredoc_bodies() {
  const auto pending = std::exchange(heredocs_, {});
  for (const auto& doc : pending) {
    const auto body_start = pos_;
    auto body_end = text_.size();
    bool terminated = false;
    while (pos_ < text_.size()) {
      const auto line_start = pos_;
      const auto nl = std::min(text_.find('\n', pos_), text_.size());
      auto line = text_.substr(pos_, nl - pos_);
      pos_ = std::min(nl + 1, text_.size());
      while (doc.strip_tabs && !line.empty() && line.front() == '\t') line.remove_prefix(1);
      if (line == doc.delimiter) {
        body_end = line_start;
        terminated = true;
        break;
      }
    }
    // Everything after an unterminated here-document is its body to sh, commands included:
    // say so rather than let them pass as data silently.
    if (!terminated) note("unterminated here-document <<" + snippet(doc.delimiter));
    if (doc.expands) sub_scan(text_.substr(body_start, body_end - body_start), true);
  }
}

}  // namespace pagi_exec::detail
