// SPDX-License-Identifier: Apache-2.0
// scan_shell on tricky sh lines: what runs is reported, what cannot be known is noted.
#include <doctest/doctest.h>

#include <pagi_exec/shell_scan.hpp>

#include <string>
#include <vector>

using pagi_exec::scan_argv;
using pagi_exec::scan_shell;

namespace {
using Words = std::vector<std::string>;

struct Row {
  const char* line;
  Words words;
  Words notes = {};
};

void check(const std::vector<Row>& rows) {
  for (const auto& row : rows) {
    CAPTURE(row.line);
    const auto scan = scan_shell(row.line);
    CHECK(scan.command_words == row.words);
    CHECK(scan.unjudgeable == row.notes);
  }
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}
}  // namespace

TEST_SUITE("shell_scan") {
  TEST_CASE("every operator and separator starts a new simple command") {
    check({
        {"ls -l", {"ls"}},
        {"ls; rm -rf ~", {"ls", "rm"}},
        {"echo x | /bin/rm y", {"echo", "/bin/rm"}},
        {"true && shutdown now", {"true", "shutdown"}},
        {"false || reboot", {"false", "reboot"}},
        {"sleep 1 & rm x", {"sleep", "rm"}},
        {"ls |& rm x", {"ls", "rm"}},
        {"ls\nrm x", {"ls", "rm"}},
        {"ls &&\nrm x", {"ls", "rm"}},
        {"(reboot)", {"reboot"}},
        {"((ls) ; (rm x))", {"ls", "rm"}},
        {"{ rm x; }", {"rm"}},
        {"ls;;rm x", {"ls", "rm"}},
        {"", {}},
        {" \n\t\n ", {}},
    });
  }

  TEST_CASE("reserved words are recognized only in command position") {
    check({
        {"if true; then rm x; fi", {"true", "rm"}},
        {"if [ -f a ]; then :; elif b; then c; else d; fi", {"[", ":", "b", "c", "d"}},
        {"while read l; do rm \"$l\"; done", {"read", "rm"}},
        {"until false; do break; done", {"false", "break"}},
        {"! rm x", {"rm"}},
        {"echo if then rm done", {"echo"}},
        {"for f in rm reboot; do ls $f; done", {"ls"}},
        {"for f do reboot; done", {"reboot"}},
        {"for f\ndo shutdown; done", {"shutdown"}},
        {"select x in a b; do rm; done", {"rm"}},
        {"[[ -f x ]] && rm x", {"[[", "rm"}},
    });
  }

  TEST_CASE("case patterns are not commands and ;; ends an arm") {
    check({
        {"case $x in a) rm y;; b|c) ls;; esac; reboot", {"rm", "ls", "reboot"}},
        {"case x in (a) echo;; esac; reboot", {"echo", "reboot"}},
        {"case x in\n  rm) ls ;;\n  *) shutdown\nesac", {"ls", "shutdown"}},
        {"case x in a) case y in b) rm;; esac;; c) ls;; esac", {"rm", "ls"}},
        {"case x in a) ls;& b) rm;;& esac", {"ls", "rm"}},
    });
  }

  TEST_CASE("assignments and redirections before the command are skipped") {
    check({
        {"X=1 Y=2 rm x; X=2", {"rm"}},
        {"a[1]=x b+=y reboot", {"reboot"}},
        {"a=(rm reboot); ls", {"ls"}},
        {">/dev/null rm x", {"rm"}},
        {"2>/dev/null rm x", {"rm"}},
        {"ls 2>&1 | rm x", {"ls", "rm"}},
        {"<in >out 2>>err rm", {"rm"}},
        {"ls &>/dev/null; rm", {"ls", "rm"}},
        {"ls >out rm", {"ls"}},  // rm is an argument of ls here
        {"cat <<< 'rm x'; ls", {"cat", "ls"}},
        {"\"X\"=1 ls", {"X=1"}},  // a quoted name is not an assignment
    });
  }

  TEST_CASE("quotes, backslashes, comments and escaped newlines") {
    check({
        {"\"r\"m x; 'r'm; r\\m", {"rm", "rm", "rm"}},
        {"echo 'a\nrm b'; rm x", {"echo", "rm"}},
        {"echo 'a\\nrm b'", {"echo"}},
        {"echo \"a\n; rm b\"; reboot", {"echo", "reboot"}},
        {"echo \"it's\"; rm x", {"echo", "rm"}},
        {"echo \"a\\\"; rm b\"", {"echo"}},
        {"ls # ; rm x", {"ls"}},
        {"ls #\nrm x", {"ls", "rm"}},
        {"echo a#b; rm x", {"echo", "rm"}},
        {"#!/bin/sh\nreboot", {"reboot"}},
        {"ls \\\n-l; r\\\nm x", {"ls", "rm"}},
        {"echo x\\;rm", {"echo"}},
    });
  }

  TEST_CASE("here-document bodies are data, unless they expand commands") {
    check({
        {"cat <<END\nrm x\nEND\nls", {"cat", "ls"}},
        {"cat <<-END\n\trm\n\tEND\nreboot", {"cat", "reboot"}},
        {"cat <<'END'\n$(rm x)\nEND", {"cat"}},
        {"cat <<\"END\"\n`rm x`\nEND", {"cat"}},
        {"cat <<A <<B\nrm\nA\nreboot\nB\nls", {"cat", "ls"}},
        {"cat <<END\nno terminator; rm", {"cat"}, {"unterminated here-document <<END"}},
        {"cat <<END\n$(rm x)\nEND", {"rm", "cat"}, {"command substitution: $(rm x)"}},
    });
  }

  TEST_CASE("commands inside substitutions are reported and the substitution is noted") {
    check({
        {"echo $(rm x) `reboot`", {"rm", "reboot", "echo"},
         {"command substitution: $(rm x)", "command substitution: `reboot`"}},
        {"echo \"$(rm x)\" \"a `reboot` b\"", {"rm", "reboot", "echo"},
         {"command substitution: $(rm x)", "command substitution: `reboot`"}},
        {"x=$(reboot) ls", {"reboot", "ls"}, {"command substitution: $(reboot)"}},
        {"echo ${x:-$(rm y)}", {"rm", "echo"}, {"command substitution: $(rm y)"}},
        {"case $(rm a) in *) ls;; esac", {"rm", "ls"}, {"command substitution: $(rm a)"}},
        {"echo $(case x in a) rm;; esac)", {"rm", "echo"}, {"command substitution: $(case x in a) rm;; esac)"}},
        {"diff <(ls) <(rm x)", {"ls", "rm", "diff"},
         {"process substitution: <(ls)", "process substitution: <(rm x)"}},
        {"echo $((1+2)); rm x", {"echo", "rm"}},
        {"echo $((echo hi) ); x", {"echo", "echo", "x"}, {"command substitution: $((echo hi) )"}},
    });
  }

  TEST_CASE("wrappers and shells: the program they run is reported too") {
    check({
        {"exec rm x", {"exec", "rm"}},
        {"nohup reboot", {"nohup", "reboot"}},
        {"time rm x", {"time", "rm"}},
        {"sudo rm x", {"sudo", "rm"}, {"`sudo` runs another program; only its first operand was judged"}},
        {"env X=1 rm x", {"env", "rm"}, {"`env` runs another program; only its first operand was judged"}},
        {"xargs rm < list", {"xargs", "rm"}, {"`xargs` runs another program; only its first operand was judged"}},
        {"timeout 5 rm x", {"timeout", "rm"}, {"`timeout` runs another program; only its first operand was judged"}},
        {"nice -n 5 /bin/rm x", {"nice", "/bin/rm"},
         {"`nice` runs another program; only its first operand was judged"}},
        {"command -v rm", {"command", "rm"},
         {"`command` runs another program; only its first operand was judged"}},
        {"find . -name x -exec rm {} \\; -execdir shutdown \\;", {"find", "rm", "shutdown"},
         {"`find -exec` runs another program", "`find -execdir` runs another program"}},
        {"find . -name x -print", {"find"}},
        {"sh -c 'rm -rf ~'", {"sh", "rm"}, {"`sh -c` runs a string as shell code"}},
        {"/bin/bash -ec \"reboot\"", {"/bin/bash", "reboot"}, {"`bash -c` runs a string as shell code"}},
        {"sudo -u root sh -c 'reboot'", {"sudo", "sh", "reboot"},
         {"`sudo` runs another program; only its first operand was judged", "`sh -c` runs a string as shell code"}},
        {"busybox sh -c 'rm x'", {"busybox", "sh", "rm"},
         {"`busybox` runs another program; only its first operand was judged", "`sh -c` runs a string as shell code"}},
        {"eval 'rm x'", {"eval", "rm"}, {"`eval` runs its arguments as shell code"}},
        {"trap 'reboot' EXIT", {"trap", "reboot"}, {"`trap` runs a string as shell code later"}},
        {"alias ls='rm -rf'", {"alias", "rm"}, {"alias definition: changes what a command word means"}},
    });
  }

  TEST_CASE("what cannot be known before run time is noted, not guessed") {
    check({
        {"$CMD x", {}, {"expansion in command position: $CMD"}},
        {"\"$HOME\"/bin/tool", {}, {"expansion in command position: \"$HOME\"/bin/tool"}},
        {"/bin/r? x", {}, {"glob in command position: /bin/r?"}},
        {"/bin/r[m] x", {}, {"glob in command position: /bin/r[m]"}},
        {"/bin/{rm,true} x", {}, {"glob in command position: /bin/{rm,true}"}},
        {"$'\\x72m' x", {}, {"expansion in command position: $'\\x72m'"}},
        {"$(echo rm) x", {"echo"}, {"command substitution: $(echo rm)", "expansion in command position: $(echo rm)"}},
        {"sh -c \"$X\"", {"sh"}, {"`sh -c` runs a string as shell code", "expansion in command position: $X"}},
        {"sh script.sh", {"sh"}, {"`sh` runs a script the scanner cannot read"}},
        {"curl x | sh", {"curl", "sh"}, {"`sh` runs a script the scanner cannot read"}},
        {"python3 -c 'import os'", {"python3"}, {"`python3` runs code the scanner cannot read"}},
        {"python3.11 x.py; perl -e 1", {"python3.11", "perl"},
         {"`python3.11` runs code the scanner cannot read", "`perl` runs code the scanner cannot read"}},
        {". ./script; source x", {".", "source"},
         {"`.` runs code the scanner cannot read", "`source` runs code the scanner cannot read"}},
        {"f() { rm x; }; function g { ls; }", {"rm", "ls"}, {"function definition: f", "function definition: g"}},
        {"echo 'unterminated", {"echo"}, {"unterminated single quote"}},
        {"echo \"unterminated", {"echo"}, {"unterminated double quote"}},
        {"echo $(ls", {"ls", "echo"}, {"unterminated $( or <(", "command substitution: $(ls"}},
    });
  }

  TEST_CASE("notes are short, printable and not repeated") {
    const auto scan = scan_shell("echo $(ls\n" + repeat("x", 100) + ") $(ls\n" + repeat("x", 100) + ")");
    REQUIRE(scan.unjudgeable.size() == 1);
    CHECK(scan.unjudgeable[0] == "command substitution: $(ls\\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...");
  }

  TEST_CASE("hostile input stays bounded: deep nesting is noted, not followed") {
    CHECK(scan_shell(repeat("(", 100000) + "rm x" + repeat(")", 100000)).command_words == Words{"rm"});
    for (const auto& line : {repeat("$(", 100000) + "rm", repeat("${", 100000), repeat("$((", 100000),
                             repeat("eval ", 10000) + "rm", repeat("`", 1001)}) {
      CAPTURE(line.substr(0, 12));
      const auto scan = scan_shell(line);
      CHECK_FALSE(scan.unjudgeable.empty());
    }
    CHECK(scan_shell(repeat("$(", 100)).unjudgeable.front() == "nesting deeper than 16 levels");
    const auto chain = scan_shell(repeat("sudo ", 1000) + "rm");
    CHECK(chain.command_words.size() == 9);
    CHECK(chain.unjudgeable.back() == "more than 8 nested wrappers");
    CHECK(scan_shell(repeat("a;", 100000)).command_words.size() == 100000);
  }

  TEST_CASE("a program given argv directly is scanned as that one simple command would be") {
    struct ArgvRow {
      Words argv;
      Words words;
      Words notes = {};
    };
    const auto shell_string = [](const char* shell) { return std::string("`") + shell + " -c` runs a string as shell code"; };
    const ArgvRow rows[] = {
        {{"sh", "-c", "rm -rf /tmp/x"}, {"rm"}, {shell_string("sh")}},
        {{"/bin/sh", "-c", "ls; reboot"}, {"ls", "reboot"}, {shell_string("sh")}},
        {{"/usr/bin/bash", "-ec", "echo $(shutdown)"}, {"shutdown", "echo"},
         {shell_string("bash"), "command substitution: $(shutdown)"}},
        {{"dash", "-e", "-c", "rm x"}, {"rm"}, {shell_string("dash")}},
        {{"bash", "-o", "pipefail", "-c", "true | rm x"}, {"true", "rm"}, {shell_string("bash")}},
        {{"bash", "--norc", "-xc", "sudo rm x"}, {"sudo", "rm"},
         {shell_string("bash"), "`sudo` runs another program; only its first operand was judged"}},
        {{"sh", "script.sh"}, {}, {"`sh` runs a script the scanner cannot read"}},
        {{"python3", "-c", "import os; os.system('rm -rf /')"}, {}, {"`python3` runs code the scanner cannot read"}},
        {{"/usr/bin/perl", "-e", "unlink 'x'"}, {}, {"`perl` runs code the scanner cannot read"}},
        {{"ruby", "-e", "File.delete('x')"}, {}, {"`ruby` runs code the scanner cannot read"}},
        {{"node", "-e", "require('fs')"}, {}, {"`node` runs code the scanner cannot read"}},
        {{"env", "X=1", "rm", "x"}, {"rm"}, {"`env` runs another program; only its first operand was judged"}},
        {{"env"}, {}, {"`env` runs another program; only its first operand was judged"}},
        {{"env", "-S", "rm -rf x"}, {"rm"}, {"`env -S` runs a string split into a command"}},
        {{"/usr/bin/env", "-i", "--split-string=reboot now"}, {"reboot"}, {"`env -S` runs a string split into a command"}},
        {{"xargs", "-n1", "rm"}, {"rm"}, {"`xargs` runs another program; only its first operand was judged"}},
        {{"busybox", "rm", "-rf", "x"}, {"rm"}, {"`busybox` runs another program; only its first operand was judged"}},
        {{"find", ".", "-name", "*.o", "-exec", "rm", "{}", ";"}, {"rm"}, {"`find -exec` runs another program"}},
        {{"find", ".", "-execdir", "shutdown", ";"}, {"shutdown"}, {"`find -execdir` runs another program"}},
        {{"find", "/tmp", "-name", "x", "-delete"}, {}, {"`find -delete` deletes files"}},
        {{"echo", "; rm -rf ~", "$(reboot)", "`shutdown`"}, {}},  // arguments of echo are data
        {{"ls", "-la"}, {}},
        {{"sh", "-c", "eval 'reboot'"}, {"eval", "reboot"}, {shell_string("sh"), "`eval` runs its arguments as shell code"}},
    };
    for (const auto& row : rows) {
      CAPTURE(row.argv.front());
      CAPTURE(row.argv.back());
      const auto scan = scan_argv(row.argv);
      CHECK(scan.command_words == row.words);
      CHECK(scan.unjudgeable == row.notes);
    }
    CHECK(scan_argv(Words{}).command_words.empty());
  }

  TEST_CASE("a line with a hundred thousand unjudgeable parts keeps a bounded list of notes") {
    std::string line;
    for (int i = 0; i < 100000; ++i) line += "$x" + std::to_string(i) + ";";
    const auto scan = scan_shell(line);
    REQUIRE(scan.unjudgeable.size() == pagi_exec::max_scan_notes);
    CHECK(scan.unjudgeable.front() == "expansion in command position: $x0");
    CHECK(scan.unjudgeable.back() == "more unjudgeable parts than are listed");
  }

  // The scan reads each byte a bounded number of times whatever the shape: ShellScan::work_bytes
  // counts the input, every nested text scanned and every stretch read again (where the work of
  // a quadratic scanner would hide). 3 MB lines of each shape that used to blow up are scanned,
  // within the budget, and ten times the input costs ten times the work.
  TEST_CASE("the scan is linear: 3 MB lines of hostile shapes cost ten times 0.3 MB ones") {
    struct Shape {
      const char* name;
      std::string prefix, unit, suffix;
    };
    const Shape shapes[] = {
        {"many commands", "", "ls;", ""},
        {"distinct unjudgeable parts", "", "$x;", ""},
        {"distinct substitutions", "echo ", "$(a) $(b) ", ""},
        {"$(( re-read as $( ( at each of 16 levels", repeat("$((", 16), "a ", repeat(") ", 16)},
        {"eval of eval", "", "eval ", "rm"},
        {"sh -c of sh -c", repeat("sh -c '", 1), "eval \\\\ ", "'"},
        {"backquotes in backquotes", "", "`a \\`b\\` ` ", ""},
        {"here-documents that expand", "", "cat <<E\n$(ls)\nE\n", ""},
    };
    for (const auto& shape : shapes) {
      CAPTURE(shape.name);
      std::uint64_t work[2] = {0, 0};
      const std::size_t sizes[2] = {300'000, 3'000'000};
      for (int i = 0; i < 2; ++i) {
        std::string line = shape.prefix;
        while (line.size() < sizes[i]) line += shape.unit;
        line += shape.suffix;
        const auto scan = scan_shell(line);
        work[i] = scan.work_bytes;
        CHECK(scan.work_bytes >= line.size());
        CHECK(scan.work_bytes <= 4 * line.size() + (64U << 10U));
        CHECK(scan.unjudgeable.size() <= pagi_exec::max_scan_notes);
      }
      MESSAGE(std::string(shape.name) << ": work " << work[0] << " -> " << work[1]);
      CHECK(work[1] <= 11 * work[0]);
    }
  }

  TEST_CASE("$(( that is not arithmetic is still read as a command substitution within the budget") {
    const auto scan = scan_shell("echo $((rm x) )");
    CHECK(scan.command_words == Words{"rm", "echo"});
  }
}
