// SPDX-License-Identifier: Apache-2.0
// RFC 3339 times: the one formatter (audit records, history on the wire, log lines) and its parser.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace pagi_exec {

namespace detail::rfc3339 {

// Reads exactly `n` decimal digits from the front of `text`.
inline std::optional<int> take_digits(std::string_view& text, std::size_t n) {
  if (text.size() < n) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  text.remove_prefix(n);
  return value;
}

inline bool take(std::string_view& text, std::string_view one_of) {
  if (text.empty() || one_of.find(text.front()) == std::string_view::npos) return false;
  text.remove_prefix(1);
  return true;
}

// ".685" -> 685 ms as nanoseconds; at least one digit, digits past nanoseconds are ignored.
inline std::optional<std::chrono::nanoseconds> take_fraction(std::string_view& text) {
  std::int64_t nanos = 0;
  std::size_t digits = 0;
  while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    if (digits < 9) nanos = nanos * 10 + (text.front() - '0');
    ++digits;
    text.remove_prefix(1);
  }
  if (digits == 0) return std::nullopt;
  for (std::size_t i = digits; i < 9; ++i) nanos *= 10;
  return std::chrono::nanoseconds(nanos);
}

// "Z" or "+hh:mm" / "-hh:mm": the zone's offset from UTC.
inline std::optional<std::chrono::minutes> take_offset(std::string_view& text) {
  if (take(text, "Zz")) return std::chrono::minutes(0);
  const bool negative = !text.empty() && text.front() == '-';
  if (!take(text, "+-")) return std::nullopt;
  const auto hours = take_digits(text, 2);
  if (!hours || !take(text, ":")) return std::nullopt;
  const auto minutes = take_digits(text, 2);
  if (!minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  const std::chrono::minutes offset(*hours * 60 + *minutes);
  return negative ? -offset : offset;
}

}  // namespace detail::rfc3339

/// `time` formatted as RFC 3339 in UTC with milliseconds: "2026-11-29T16:48:36.685Z".
[[nodiscard]] inline std::string to_rfc3339(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(time);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss clock{ms - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

/// Parses RFC 3339 ("2026-11-29T16:48:36.685Z", "...+02:00", any fraction) or a date alone
/// ("2026-11-29", midnight UTC); nullopt when `text` is neither.
[[nodiscard]] inline std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  using namespace std::chrono;
  using namespace detail::rfc3339;
  const auto y = take_digits(text, 4);
  if (!y || !take(text, "-")) return std::nullopt;
  const auto m = take_digits(text, 2);
  if (!m || !take(text, "-")) return std::nullopt;
  const auto d = take_digits(text, 2);
  if (!d) return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*m)}, day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  system_clock::time_point result{sys_days{date}};
  if (text.empty()) return result;  // a date alone: midnight UTC
  if (!take(text, "Tt ")) return std::nullopt;
  const auto hh = take_digits(text, 2);
  if (!hh || !take(text, ":")) return std::nullopt;
  const auto mm = take_digits(text, 2);
  if (!mm || !take(text, ":")) return std::nullopt;
  const auto ss = take_digits(text, 2);
  if (!ss || *hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;  // 60: a leap second
  nanoseconds fraction{0};
  if (take(text, ".")) {
    const auto parsed = take_fraction(text);
    if (!parsed) return std::nullopt;
    fraction = *parsed;
  }
  const auto offset = take_offset(text);
  if (!offset || !text.empty()) return std::nullopt;
  result += duration_cast<system_clock::duration>(hours(*hh) + minutes(*mm) + seconds(*ss) + fraction);
  return result - *offset;
}

}  // namespace pagi_exec
