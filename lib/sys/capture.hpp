// SPDX-License-Identifier: Apache-2.0
// StreamCapture: turns a byte stream into capped lines, so output costs at most the caps.
#pragma once

#include <string>
#include <string_view>

#include "pagi_exec/outcome.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec::sys {

/// Accumulates one output stream. Bytes past the caps are counted and dropped; memory held is
/// bounded by caps.max_bytes. Lines are returned as valid UTF-8 (invalid bytes become U+FFFD),
/// because they travel in proto3 `string` fields. Not thread-safe: one per stream.
class StreamCapture {
 public:
  explicit StreamCapture(OutputCaps caps) : caps_(caps) {}

  /// Feeds the next chunk of bytes as read from the pipe.
  void feed(std::string_view chunk);
  /// Ends the stream: a last line without '\n' is kept. Returns the captured stream.
  [[nodiscard]] CapturedStream finish();

 private:
  void end_line();
  [[nodiscard]] bool full() const noexcept;

  OutputCaps caps_;
  CapturedStream result_;
  std::string partial_;          // the current line, not yet ended by '\n'
  std::uint64_t kept_bytes_ = 0; // bytes of the lines already kept
  bool partial_cut_ = false;     // the current line lost bytes to the byte cap
};

/// `text` with every invalid UTF-8 sequence replaced by U+FFFD.
[[nodiscard]] std::string to_valid_utf8(std::string_view text);

}  // namespace pagi_exec::sys
