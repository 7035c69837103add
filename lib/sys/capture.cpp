// SPDX-License-Identifier: Apache-2.0
// Capped line capture of a command's output.
#include "sys/capture.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace pagi_exec::sys {

bool StreamCapture::full() const noexcept {
  return result_.lines.size() >= caps_.max_lines || kept_bytes_ >= caps_.max_bytes;
}

void StreamCapture::feed(std::string_view chunk) {
  result_.total_bytes += chunk.size();
  while (!chunk.empty()) {
    if (full()) {
      result_.truncated = true;  // drain: the rest is counted but not kept
      return;
    }
    const auto newline = chunk.find('\n');
    const auto piece = chunk.substr(0, newline);
    const std::uint64_t room = caps_.max_bytes - kept_bytes_ - partial_.size();
    if (piece.size() > room) {
      partial_.append(piece.substr(0, static_cast<std::size_t>(room)));
      partial_cut_ = true;
    } else {
      partial_.append(piece);
    }
    if (newline == std::string_view::npos) return;
    end_line();
    chunk.remove_prefix(newline + 1);
  }
}

void StreamCapture::end_line() {
  if (partial_cut_) result_.truncated = true;
  kept_bytes_ += partial_.size();
  result_.lines.push_back(to_valid_utf8(partial_));
  partial_.clear();
  partial_cut_ = false;
}

CapturedStream StreamCapture::finish() {
  if (!partial_.empty() || partial_cut_) {
    if (full()) {
      result_.truncated = true;
    } else {
      end_line();
    }
  }
  return std::move(result_);
}

namespace {
// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  return len;
}
}  // namespace

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto len = utf8_sequence_length(text, i);
    if (len == 0) {
      out.append("\xef\xbf\xbd");  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace pagi_exec::sys
