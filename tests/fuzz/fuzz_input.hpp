// SPDX-License-Identifier: Apache-2.0
// What the fuzz targets share: the libFuzzer entry point's declaration, turning bytes into the
// fields of a request, and a check that stops the run (libFuzzer records the input as a crash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fuzz {

/// The input as text: any bytes, NUL and invalid UTF-8 included.
[[nodiscard]] inline std::string_view as_text(const std::uint8_t* data, std::size_t size) noexcept {
  return {reinterpret_cast<const char*>(data), size};
}

/// The input cut at every '\n' (a seed file is readable: one field a line). Empty fields are kept,
/// so "a\n\nb" is three fields; an input without '\n' is one field.
[[nodiscard]] inline std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t end = text.find('\n'); end != std::string_view::npos; end = text.find('\n', start)) {
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  out.emplace_back(text.substr(start));
  return out;
}

/// A property the target claims for every input. When it does not hold, the run aborts, which
/// libFuzzer reports as a crash and saves the input that caused it.
inline void check(bool holds, const char* claim) {
  if (holds) return;
  std::fprintf(stderr, "fuzz: property violated: %s\n", claim);
  std::abort();
}

}  // namespace fuzz
