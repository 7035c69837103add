// SPDX-License-Identifier: Apache-2.0
// Internal to scan_shell: programs that run other programs (sudo, sh -c, eval, ...): judge what
// they run where it can be read, note the rest.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/detail/shell_words.hpp"
#include "pagi_exec/program_name.hpp"

// The list is of the usual suspects, not of every program that can start another: git (hooks,
// aliases), editors, debuggers and many more can too. docs/policy.md says so.

namespace pagi_exec::detail {

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

/// Reports `word` in command position: as a command word when its value is known, else as a note.
/// True when it was reported as a command word.
inline bool judge_word(RunnerSink& sink, const ShellWord& word) {
  if (word.expands || word.globs) {
    sink.note(std::string(word.expands ? "expansion" : "glob") + " in command position: " + snippet(word.raw));
    return false;
  }
  if (word.text.empty()) return false;
  sink.command_word(word.text);
  return true;
}

namespace runners {

enum class Runs : std::uint8_t {
  wrapper,        // runs its first operand as a program (sudo rm): judged, and noted
  plain_wrapper,  // the same, and exact when given no options (exec rm, nohup rm, time rm)
  shell,          // sh -c STRING: STRING is scanned; without -c it runs a script
  eval,           // eval ARGS: the arguments joined by spaces are scanned
  trap,           // trap STRING SIGNAL...: STRING is scanned
  alias,          // alias NAME=STRING: STRING is scanned
  find,           // find ... -exec PROGRAM ...: every PROGRAM is judged
  code,           // interpreters and `source`: what they run cannot be read here
};

struct Runner {
  std::string_view name;  // program name without a version suffix (python3.11 -> python)
  Runs runs;
  std::string_view arg_options = {};  // short options that take the next word as their argument
  std::uint8_t positionals = 0;       // operands before the program (timeout DURATION, chroot DIR)
};

inline constexpr auto runners = std::to_array<Runner>({
    {"exec", Runs::plain_wrapper, "a"}, {"command", Runs::plain_wrapper}, {"builtin", Runs::plain_wrapper},
    {"nohup", Runs::plain_wrapper}, {"time", Runs::plain_wrapper, "fo"},
    {"env", Runs::wrapper, "uCS"}, {"sudo", Runs::wrapper, "CDghpRrtTUu"}, {"doas", Runs::wrapper, "Cu"},
    {"nice", Runs::wrapper, "n"}, {"ionice", Runs::wrapper, "cnp"}, {"timeout", Runs::wrapper, "ks", 1},
    {"setsid", Runs::wrapper}, {"stdbuf", Runs::wrapper, "ioe"}, {"chroot", Runs::wrapper, "", 1},
    {"xargs", Runs::wrapper, "adEeIiLlnPs"}, {"strace", Runs::wrapper, "abeEIoOpPsSuUX"},
    {"ltrace", Runs::wrapper, "aeEfnopSu"}, {"taskset", Runs::wrapper, "", 1}, {"chrt", Runs::wrapper, "", 1},
    {"unshare", Runs::wrapper}, {"nsenter", Runs::wrapper, "tSGw"}, {"flock", Runs::wrapper, "wE", 1},
    {"watch", Runs::wrapper, "n"}, {"busybox", Runs::wrapper}, {"toybox", Runs::wrapper},
    {"coproc", Runs::wrapper}, {"fakeroot", Runs::wrapper}, {"systemd-run", Runs::wrapper},
    {"parallel", Runs::wrapper}, {"sg", Runs::wrapper, "", 1},
    {"sh", Runs::shell, "o"}, {"bash", Runs::shell, "o"}, {"dash", Runs::shell, "o"}, {"zsh", Runs::shell, "o"},
    {"ksh", Runs::shell, "o"}, {"mksh", Runs::shell, "o"}, {"ash", Runs::shell, "o"}, {"yash", Runs::shell, "o"},
    {"posh", Runs::shell, "o"}, {"rbash", Runs::shell, "o"}, {"fish", Runs::shell}, {"csh", Runs::shell},
    {"tcsh", Runs::shell}, {"su", Runs::shell}, {"runuser", Runs::shell}, {"script", Runs::shell},
    {"eval", Runs::eval}, {"trap", Runs::trap}, {"alias", Runs::alias}, {"find", Runs::find},
    {"source", Runs::code}, {".", Runs::code}, {"python", Runs::code}, {"pypy", Runs::code},
    {"perl", Runs::code}, {"ruby", Runs::code}, {"irb", Runs::code}, {"node", Runs::code},
    {"nodejs", Runs::code}, {"deno", Runs::code}, {"bun", Runs::code}, {"php", Runs::code},
    {"lua", Runs::code}, {"luajit", Runs::code}, {"tclsh", Runs::code}, {"wish", Runs::code},
    {"expect", Runs::code}, {"Rscript", Runs::code}, {"julia", Runs::code}, {"guile", Runs::code},
    {"pwsh", Runs::code}, {"awk", Runs::code}, {"gawk", Runs::code}, {"mawk", Runs::code},
    {"nawk", Runs::code}, {"sed", Runs::code}, {"make", Runs::code}, {"ssh", Runs::code},
});

// More wrappers than this inside one simple command are not followed (`sudo sudo sudo ...`).
inline constexpr int max_chain = 8;

inline const Runner* find_runner(std::string_view program) {
  const auto name = program_name(program);
  auto key = name;  // python3.11 -> python, perl5.36 -> perl
  while (!key.empty() && ((key.back() >= '0' && key.back() <= '9') || key.back() == '.')) key.remove_suffix(1);
  if (key.empty()) key = name;
  const auto it = std::find_if(runners.begin(), runners.end(), [&](const Runner& r) { return r.name == key; });
  return it == runners.end() ? nullptr : &*it;
}

inline bool is_option(const std::string& arg) { return arg.size() > 1 && arg[0] == '-'; }

// The index of the program a wrapper runs: its first operand after options, option arguments,
// NAME=VALUE words and fixed leading operands. `options` says whether options were skipped.
inline std::optional<std::size_t> wrapped_program(const Runner& r, const std::vector<ShellWord>& args, std::size_t i,
                                           bool& options) {
  auto positionals = r.positionals;
  bool options_done = false;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i].text;
    if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && is_option(arg)) {
      options = true;
      if (arg.size() == 2 && r.arg_options.find(arg[1]) != std::string_view::npos) ++i;
    } else if (is_assignment(args[i].raw)) {
      continue;  // env X=1 prog, sudo X=1 prog
    } else if (positionals > 0) {
      --positionals;
    } else {
      return i;
    }
  }
  return std::nullopt;
}

// find: every -exec/-execdir/-ok/-okdir PROGRAM is judged; returns the first such PROGRAM.
// -delete removes what the expression matches, which no name list can judge.
inline std::optional<std::size_t> find_exec(RunnerSink& sink, const std::vector<ShellWord>& args, std::size_t i) {
  std::optional<std::size_t> first;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i].text;
    if (arg == "-delete") sink.note("`find -delete` deletes files");
    if (i + 1 == args.size()) break;
    if (arg != "-exec" && arg != "-execdir" && arg != "-ok" && arg != "-okdir") continue;
    sink.note("`find " + arg + "` runs another program");
    if (judge_word(sink, args[i + 1]) && !first) first = i + 1;
  }
  return first;
}

// env -S STRING / --split-string=STRING: STRING is split into a command line of its own. Scanned
// as a shell line (a superset of what env's splitting can spell).
inline bool env_split_string(RunnerSink& sink, const std::vector<ShellWord>& args, std::size_t i) {
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i].text;
    std::string_view split;
    if ((arg == "-S" || arg == "--split-string") && i + 1 < args.size()) split = args[i + 1].text;
    else if (arg.starts_with("--split-string=")) split = std::string_view(arg).substr(15);
    else if (arg.starts_with("-S") && arg.size() > 2) split = std::string_view(arg).substr(2);
    else if (!is_option(arg) && !is_assignment(args[i].raw)) return false;
    if (split.data() == nullptr) continue;
    sink.note("`env -S` runs a string split into a command");
    sink.sub_scan(split);
    return true;
  }
  return false;
}

// sh -c STRING (also -ec, -xc, su -c): STRING is shell code to scan.
inline void shell_string(RunnerSink& sink, const std::string& shown, const std::vector<ShellWord>& args, std::size_t i) {
  bool dash_c = false;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i].text;
    const bool option = arg.size() > 1 && (arg[0] == '-' || arg[0] == '+');
    if (!dash_c && option && arg[1] != '-' && arg.find('c') != std::string::npos) {
      dash_c = true;
    } else if (dash_c && !option) {
      sink.note("`" + shown + " -c` runs a string as shell code");
      sink.sub_scan(arg);
      return;
    }
  }
  sink.note("`" + shown + "` runs a script the scanner cannot read");
}

// Scans what eval, trap and alias turn into shell code. True when `runs` was one of them.
inline bool shell_code_arguments(RunnerSink& sink, Runs runs, const std::string& shown, const std::vector<ShellWord>& args,
                          std::size_t i) {
  switch (runs) {
    case Runs::eval: {
      std::string joined;
      for (; i < args.size(); ++i) joined += (joined.empty() ? "" : " ") + args[i].text;
      sink.note("`eval` runs its arguments as shell code");
      sink.sub_scan(joined);
      return true;
    }
    case Runs::trap:
      sink.note("`trap` runs a string as shell code later");
      if (i < args.size() && !is_option(args[i].text)) sink.sub_scan(args[i].text);
      return true;
    case Runs::alias:
      sink.note("alias definition: changes what a command word means");
      for (; i < args.size(); ++i) {
        const auto eq = args[i].text.find('=');
        if (eq != std::string::npos) sink.sub_scan(std::string_view(args[i].text).substr(eq + 1));
      }
      return true;
    case Runs::code: sink.note("`" + shown + "` runs code the scanner cannot read"); return true;
    case Runs::wrapper:
    case Runs::plain_wrapper:
    case Runs::shell:
    case Runs::find: return false;
  }
  return false;
}

}  // namespace runners

/// When `program` runs other programs (a wrapper, a shell, eval, find -exec, an interpreter),
/// reports what it runs from `args`, or notes what cannot be judged.
inline void follow_runners(RunnerSink& sink, std::string_view program, const std::vector<ShellWord>& args) {
  using namespace runners;
  std::size_t next = 0;  // args[next..] are the arguments of `program`
  for (int chain = 0;; ++chain) {
    const Runner* r = find_runner(program);
    if (r == nullptr) return;
    if (chain == max_chain) return sink.note("more than 8 nested wrappers");
    const std::string shown(program_name(program));
    if (shell_code_arguments(sink, r->runs, shown, args, next)) return;
    if (r->runs == Runs::shell) return shell_string(sink, shown, args, next);
    if (r->name == "env" && env_split_string(sink, args, next)) return;
    std::optional<std::size_t> runs;
    if (r->runs == Runs::find) {
      runs = find_exec(sink, args, next);
    } else {
      bool options = false;
      const auto wrapped = wrapped_program(*r, args, next, options);
      if (r->runs == Runs::wrapper || options) sink.note("`" + shown + "` runs another program; only its first operand was judged");
      if (wrapped && judge_word(sink, args[*wrapped])) runs = wrapped;
    }
    if (!runs) return;
    program = args[*runs].text;
    next = *runs + 1;
  }
}

}  // namespace pagi_exec::detail
