// SPDX-License-Identifier: Apache-2.0
// Internal to scan_shell: the Scanner, a sh lexer (shell_lex.hpp) and parser (shell_parse.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/detail/shell_runners.hpp"
#include "pagi_exec/detail/shell_words.hpp"

namespace pagi_exec {
struct ShellScan;  // shell_scan.hpp, which includes this header through shell_lex.hpp and shell_parse.hpp
}  // namespace pagi_exec

namespace pagi_exec::detail {

/// Nesting ($( ), ${ }, backquotes, sh -c, eval) deeper than this is noted, not followed.
inline constexpr int max_scan_depth = 16;
inline constexpr std::string_view too_deep = "nesting deeper than 16 levels";
/// Noted when nested code (sh -c, eval, substitutions re-read as bash does) would take the scan
/// past its work budget (scan_work_budget): the rest of it is not followed.
inline constexpr std::string_view too_much = "more nested code than the scanner follows";
/// The bytes a scan may read in all, re-reads and nested scans included, for `bytes` of input:
/// this bound is what keeps every scan linear in the size of its input.
[[nodiscard]] constexpr std::uint64_t scan_work_budget(std::uint64_t bytes) noexcept {
  return 4 * bytes + (64U << 10U);
}
/// The last note when there were more than max_scan_notes.
inline constexpr std::string_view more_notes = "more unjudgeable parts than are listed";

/// Token kinds of XCU 2.3, grouped by what the parser does with them.
enum class Tok : std::uint8_t { word, separator, case_end, lparen, rparen, redirect, heredoc, heredoc_tabs, end };

struct Token {
  Tok kind = Tok::end;
  ShellWord word;
};

enum class CasePart : std::uint8_t { subject, in, pattern, body };

/// The parser's state in one command list: the top level, or the inside of $( ) / <( ).
struct CommandList {
  bool nested = false;
  bool expect_command = true;
  Tok redirect = Tok::end;       ///< redirect or here-doc operator seen: the next word is its target
  int for_header = 0;            ///< for/select: 1 name next, 2 `in` or `do` next, 3 word list
  bool function_name = false;    ///< `function NAME`: NAME is not a command
  bool function_parens = false;  ///< `NAME (` seen: `)` makes it a function definition
  bool array = false;            ///< bash `a=(1 2)`: words up to `)` are values
  int parens = 0;                ///< open subshells in this list
  std::vector<CasePart> cases{};
  std::optional<ShellWord> command{};
  std::vector<ShellWord> args{};
};

struct Heredoc {
  std::string delimiter;
  bool strip_tabs = false;
  bool expands = false;  ///< unquoted delimiter: $ and ` in the body are expanded
};

/// Reads one text (a command line, a here-document body, a `sh -c` string) into `out`.
class Scanner final : public RunnerSink {
 public:
  /// `out.work_bytes` counts what every scanner of one scan reads; `budget` bounds it.
  Scanner(std::string_view text, ShellScan& out, int depth, std::uint64_t budget)
      : text_(text), out_(out), depth_(depth), budget_(budget) {}

  void run() { parse_list(false); }
  /// A here-document body: only $ and ` mean anything there.
  void scan_expansions();

  // Declared inline here, not only where defined: an out-of-class virtual would be the class's
  // key function, and every file including this header would then compile the vtable and the
  // whole scanner behind it (about 1.3 s a file at -O2), used or not.
  inline void note(std::string what) override;
  inline void command_word(std::string word) override;
  void sub_scan(std::string_view text) override { sub_scan(text, false); }

 private:
  /// Enters one level of nesting, or gives up on the rest of the text when it is too deep.
  class Nest {
   public:
    explicit Nest(Scanner& s);
    ~Nest();
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    [[nodiscard]] bool ok() const noexcept { return ok_; }

   private:
    Scanner& scanner_;
    bool ok_;
  };

  void sub_scan(std::string_view text, bool expansions_only);
  /// Counts `bytes` more read; false (and a note) when that would pass the budget.
  bool charge(std::size_t bytes);
  [[nodiscard]] char at(std::size_t i) const noexcept { return i < text_.size() ? text_[i] : '\0'; }

  // Lexer (shell_lex.hpp).
  void skip_blanks();
  Token next_token();
  ShellWord read_word();
  void read_escape(ShellWord& w);
  void read_single(ShellWord& w);
  void read_double(ShellWord& w);
  void read_dollar(ShellWord& w);
  bool read_arithmetic();
  void read_braced();
  bool skip_to_close(char open, char close);
  void read_backquoted(ShellWord& w);
  void nested_list(ShellWord& w, std::size_t start, std::string_view what);
  void read_heredoc_bodies();

  // Parser (shell_parse.hpp).
  void parse_list(bool nested);
  void on_token(CommandList& l, Token t);
  static bool on_case_header(CommandList& l, const Token& t);
  void on_word(CommandList& l, ShellWord w);
  static bool on_reserved_word(CommandList& l, const std::string& word);
  void finish(CommandList& l);

  std::string_view text_;
  std::size_t pos_ = 0;
  ShellScan& out_;
  int depth_;
  std::uint64_t budget_;
  std::vector<Heredoc> heredocs_;
};

}  // namespace pagi_exec::detail
