// SPDX-License-Identifier: Apache-2.0
// The server's log lines: text keeps one event on one line whatever it carries, JSON is one
// parseable object per line with the event's fields, hostile values are escaped and cut.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "log.hpp"

using tools_server::LogField;
using tools_server::LogFormat;
using tools_server::LogLevel;
using tools_server::render_line;

namespace {

// The line without its timestamp (the first word).
std::string after_time(const std::string& line) { return line.substr(line.find(' ') + 1); }

}  // namespace

TEST_SUITE("log") {
  TEST_CASE("a text line: LEVEL, message, then name=value with outside values quoted and our words bare") {
    const auto line = render_line(LogLevel::warn, "auth_rejected",
                                  {LogField::word("rpc", "RequestExecution"), LogField::text("twin", "twin \"x\"\n"),
                                   LogField::number("n", -3), LogField::flag("cancelled", true)},
                                  LogFormat::text);
    CHECK(after_time(line) == "WARN auth_rejected rpc=RequestExecution twin=\"twin \\\"x\\\"\\n\" n=-3 cancelled=true\n");
    CHECK(line.find('\n') == line.size() - 1);
  }

  TEST_CASE("a JSON line is one object: time, level, message, then the fields with their types") {
    const auto line = render_line(LogLevel::info, "request",
                                  {LogField::word("execution_id", "abc"), LogField::text("twin", "twin-aegis"),
                                   LogField::number("duration_ms", 12), LogField::flag("timed_out", false)},
                                  LogFormat::json);
    REQUIRE(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    const auto object = nlohmann::json::parse(line);
    CHECK(object.at("level") == "info");
    CHECK(object.at("message") == "request");
    CHECK(object.at("execution_id") == "abc");
    CHECK(object.at("twin") == "twin-aegis");
    CHECK(object.at("duration_ms") == 12);
    CHECK(object.at("timed_out") == false);
    const std::string time = object.at("time");
    CHECK(time.size() == std::string("2026-12-01T03:04:05.678Z").size());
    CHECK(time.back() == 'Z');
    // The order a reader expects: the envelope first, then the fields as given.
    CHECK(line.find("\"time\"") < line.find("\"level\""));
    CHECK(line.find("\"message\"") < line.find("\"execution_id\""));
  }

  TEST_CASE("hostile values: control bytes and invalid UTF-8 never break a line, long values are cut") {
    const std::string hostile = std::string("a\nb\x01\xff\xfe", 6) + std::string(1000, 'z');
    for (const auto format : {LogFormat::text, LogFormat::json}) {
      CAPTURE(static_cast<int>(format));
      const auto line = render_line(LogLevel::error, std::string("msg\nwith newline\xc3", 17),
                                    {LogField::text("twin", hostile, 16)}, format);
      CHECK(line.find('\n') == line.size() - 1);
      CHECK(line.find(std::string(17, 'z')) == std::string::npos);
      CHECK(line.find("...") != std::string::npos);
      if (format == LogFormat::json) {
        const auto object = nlohmann::json::parse(line);  // throws on invalid JSON or UTF-8
        const std::string twin = object.at("twin");
        CHECK(twin.starts_with("a\nb\x01"));
        CHECK(twin.ends_with("..."));
      }
    }
  }

  TEST_CASE("the format names") {
    CHECK(tools_server::log_format_from_string("json") == LogFormat::json);
    CHECK(tools_server::log_format_from_string("text") == LogFormat::text);
    CHECK_FALSE(tools_server::log_format_from_string("JSON "));
  }
}
