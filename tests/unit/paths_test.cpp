// SPDX-License-Identifier: Apache-2.0
// Names that become paths: program names, twin ids, workspace paths, captured output text.
#include <doctest/doctest.h>

#include <pagi_exec/paths.hpp>
#include <pagi_exec/program_name.hpp>

#include "sys/capture.hpp"

using namespace pagi_exec;

TEST_SUITE("paths") {
  TEST_CASE("program_name takes the last non-empty component") {
    CHECK(program_name("rm") == "rm");
    CHECK(program_name("/bin/rm") == "rm");
    CHECK(program_name("//bin///rm") == "rm");
    CHECK(program_name("../../bin/rm") == "rm");
    CHECK(program_name("rm//") == "rm");
    CHECK(program_name("/") == "");
    CHECK(program_name("") == "");
  }

  TEST_CASE("twin ids must be one safe path component") {
    CHECK(validate_twin_id("twin-aegis"));
    CHECK(validate_twin_id("a.b_c-9"));
    CHECK(validate_twin_id(std::string(max_twin_id_length, 'x')));
    const std::string bad[] = {"", ".", "..", "a/b", "/etc", "../x", std::string("a\0b", 3), "a\nb", "\x7f",
                               "-rf", std::string(max_twin_id_length + 1, 'x')};
    for (const auto& id : bad) {
      CAPTURE(id);
      const auto valid = validate_twin_id(id);
      REQUIRE_FALSE(valid);
      CHECK(valid.error().code == Errc::invalid_request);
      CHECK(valid.error().message().find("one path component") != std::string::npos);
    }
  }

  TEST_CASE("workspace paths stay inside by their spelling") {
    CHECK(validate_workspace_path("notes.txt"));
    CHECK(validate_workspace_path("dir/sub/notes.txt"));
    CHECK(validate_workspace_path("-dash"));
    const std::string bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a/./b", "./a", "a//b", "a/",
                               std::string("a\0b", 3), "a\tb", std::string(300, 'x'),
                               std::string(max_workspace_path_length + 1, 'a')};
    for (const auto& path : bad) {
      CAPTURE(path);
      const auto valid = validate_workspace_path(path);
      REQUIRE_FALSE(valid);
      CHECK(valid.error().message().find("relative to the twin's workspace") != std::string::npos);
    }
  }

  TEST_CASE("captured lines are valid UTF-8") {
    CHECK(sys::to_valid_utf8("plain") == "plain");
    CHECK(sys::to_valid_utf8("gr\xc3\xbc\xc3\x9f") == "gr\xc3\xbc\xc3\x9f");
    CHECK(sys::to_valid_utf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
    CHECK(sys::to_valid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");        // overlong '/'
    CHECK(sys::to_valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
    CHECK(sys::to_valid_utf8("\xe2\x82") == "\xef\xbf\xbd\xef\xbf\xbd");       // cut short
  }
}

TEST_SUITE("capture") {
  TEST_CASE("splits lines across chunk boundaries") {
    sys::StreamCapture capture({.max_bytes = 1024, .max_lines = 10});
    capture.feed("one\ntw");
    capture.feed("o\n\nthree");
    const auto stream = capture.finish();
    CHECK(stream.lines == std::vector<std::string>{"one", "two", "", "three"});
    CHECK_FALSE(stream.truncated);
    CHECK(stream.total_bytes == 14);
  }

  TEST_CASE("the line cap keeps the first lines and reports the rest") {
    sys::StreamCapture capture({.max_bytes = 1024, .max_lines = 2});
    capture.feed("a\nb\nc\nd\n");
    const auto stream = capture.finish();
    CHECK(stream.lines == std::vector<std::string>{"a", "b"});
    CHECK(stream.truncated);
    CHECK(stream.total_bytes == 8);
  }

  TEST_CASE("exactly the cap is not truncation") {
    sys::StreamCapture capture({.max_bytes = 1024, .max_lines = 2});
    capture.feed("a\nb\n");
    CHECK_FALSE(capture.finish().truncated);
  }

  TEST_CASE("the byte cap cuts a long line and drops what follows") {
    sys::StreamCapture capture({.max_bytes = 5, .max_lines = 100});
    capture.feed("abc\ndefghij\nk\n");
    const auto stream = capture.finish();
    CHECK(stream.lines == std::vector<std::string>{"abc", "de"});
    CHECK(stream.truncated);
  }

  TEST_CASE("memory stays bounded however much is fed") {
    sys::StreamCapture capture({.max_bytes = 100, .max_lines = 100});
    const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 1000; ++i) capture.feed(chunk);  // 64 MiB without a newline
    const auto stream = capture.finish();
    REQUIRE(stream.lines.size() == 1);
    CHECK(stream.lines[0].size() == 100);
    CHECK(stream.truncated);
    CHECK(stream.total_bytes == 64ULL * 1024 * 1000);
  }
}
