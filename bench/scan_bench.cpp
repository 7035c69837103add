// SPDX-License-Identifier: Apache-2.0
// scan_bench: the shell scanner's time per MB for lines of 0.3 MB and 3 MB of several shapes.
// A linear scanner shows the same time per MB for both sizes; a quadratic one 10x more for 3 MB.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

namespace {

struct Shape {
  const char* name;
  std::string unit;    // repeated to the wanted size ("#" is replaced by a counter)
  std::string prefix;  // once, before the units
  std::string suffix = {};  // once, after them
};

std::string line_of(const Shape& shape, std::size_t bytes) {
  std::string line = shape.prefix;
  line.reserve(bytes + shape.unit.size() + shape.suffix.size());
  const auto hash = shape.unit.find('#');
  for (std::size_t i = 0; line.size() < bytes; ++i) {
    line += hash == std::string::npos ? shape.unit
                                      : shape.unit.substr(0, hash) + std::to_string(i) + shape.unit.substr(hash + 1);
  }
  return line + shape.suffix;
}

std::string repeat(const std::string& text, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += text;
  return out;
}

double seconds_for(const std::function<void()>& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
    std::fputs("usage: scan_bench\n\nTimes the policy's shell scanner on lines of 0.3 MB and 3 MB of 19 shapes (long words, many\n"
               "commands, substitutions, here-documents...) and prints the seconds per MB of each and their\n"
               "ratio: about 1 when the scan is linear, about 10 when it is quadratic. Takes no arguments.\n",
               help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const std::vector<Shape> shapes = {
      {"one long word", "a", "echo "},
      {"many commands", "ls;", ""},
      {"many arguments", "a ", "echo "},
      {"substitutions", "$(date) ", "echo "},
      {"distinct substitutions", "$(d) $(e) $(f) $(g) ", "echo "},
      {"backquotes", "`x` ", "echo "},
      {"quoted words", "\"a b\" 'c' ", "echo "},
      {"assignments", "X=1 ", ""},
      {"here-documents", "<<a ", "cat "},
      {"find -exec", "-exec rm {} ; ", "find . "},
      {"eval words", "x ", "eval "},
      {"wrappers", "nice ", "sudo "},
      {"expansions in command position", "$x;", ""},
      {"unterminated quote", "a", "echo '"},
      {"comments", "#a\n", ""},
      {"case patterns", "a) ;; ", "case x in "},
      // The shapes that were not linear before issue 8: a note per distinct part (each note was
      // searched for in all the earlier ones) and $(( re-read as $( ( at every nesting level.
      {"distinct unjudgeable parts", "$x#;", ""},
      {"distinct substitutions in args", "$(a#) ", "echo "},
      {"nested $(( re-read", "a ", repeat("$((", 16), repeat(") ", 16)},
  };
  const auto policy = pagi_exec::Policy::seed_default();
  std::printf("%-32s %12s %12s %8s\n", "shape", "0.3 MB s/MB", "3 MB s/MB", "ratio");
  for (const auto& shape : shapes) {
    double per_mb[2] = {0, 0};
    const std::size_t sizes[2] = {300'000, 3'000'000};
    for (int i = 0; i < 2; ++i) {
      const auto line = line_of(shape, sizes[i]);
      const pagi_exec::Request request{.tool = "command_exec", .args = {line}, .twin_id = "twin-aegis"};
      const auto command = pagi_exec::Command::make(request, pagi_exec::ToolCatalog::seed_default(),
                                                    {.max_request_bytes = 1ULL << 30});
      if (!command) return 1;
      per_mb[i] = seconds_for([&] { (void)policy.decide(*command); }) / (static_cast<double>(line.size()) / 1e6);
    }
    std::printf("%-32s %12.4f %12.4f %8.1f\n", shape.name, per_mb[0], per_mb[1], per_mb[1] / per_mb[0]);
  }
  return 0;
}
