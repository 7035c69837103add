// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the shell-bridge scanner on any line (scan_shell), and on the same bytes as an
// argv cut at each '\n' (scan_argv), with the bounds shell_scan.hpp promises.
#include <cstddef>
#include <cstdint>
#include <string>

#include <pagi_exec/shell_scan.hpp>

#include "fuzz_input.hpp"

namespace {

// shell_scan.hpp: never more than 4 times the input plus 64 KiB read, at most max_scan_notes notes.
void check_bounds(const pagi_exec::ShellScan& scan, std::size_t input_bytes) {
  fuzz::check(scan.work_bytes <= 4 * static_cast<std::uint64_t>(input_bytes) + (64U << 10),
              "the scan reads at most 4 times its input plus 64 KiB");
  fuzz::check(scan.unjudgeable.size() <= pagi_exec::max_scan_notes, "at most max_scan_notes notes");
  for (std::size_t i = 0; i < scan.unjudgeable.size(); ++i) {
    fuzz::check(!scan.unjudgeable[i].empty(), "no empty note");
    for (std::size_t j = 0; j < i; ++j) fuzz::check(scan.unjudgeable[i] != scan.unjudgeable[j], "no duplicate note");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto scan = pagi_exec::scan_shell(text);
  check_bounds(scan, size);
  fuzz::check(scan == pagi_exec::scan_shell(text), "the scan is pure");

  const auto argv = fuzz::lines(text);
  check_bounds(pagi_exec::scan_argv(argv), size);
  return 0;
}
