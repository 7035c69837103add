// SPDX-License-Identifier: Apache-2.0
// The audit log's hash chain: a real log written by AuditLog verifies; editing, deleting,
// swapping, inserting or unlinking records of it is found and named; crashes, restarts and
// rotations keep the chain.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

std::shared_ptr<AuditLog> open_log(AuditOptions options) {
  auto log = AuditLog::open(std::move(options));
  REQUIRE_MESSAGE(log, (log ? "" : log.error().message()));
  return *log;
}

// `count` requests, each decided then finished, with arguments telling them apart.
void write_records(AuditLog& log, int count, int first = 0) {
  for (int i = first; i < first + count; ++i) {
    const Request request{.tool = "command_exec", .args = {"echo " + std::to_string(i)}, .twin_id = "twin-aegis"};
    Outcome outcome{.execution_id = "id-" + std::to_string(i),
                    .decision = {.allowed = true, .reason = "granted", .rule = "twins.twin-aegis.allow[*]"},
                    .ran = true,
                    .exit_code = 0,
                    .policy_revision = "abc123def456"};
    REQUIRE(log.decided(request, outcome));
    REQUIRE(log.finished(request, outcome));
  }
}

std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& line : lines) out << line << '\n';
}

AuditChainReport verify(std::vector<std::filesystem::path> files) {
  auto report = verify_audit_chain(files);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().message()));
  return *report;
}

// A log of 10 records (5 requests) in one file.
std::filesystem::path ten_records(const TempDir& dir) {
  const auto path = dir.path() / "audit.jsonl";
  write_records(*open_log({.path = path, .node = "node-a"}), 5);
  REQUIRE(lines_of(path).size() == 10);
  return path;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("audit_chain") {
  TEST_CASE("a log as written verifies, from the chain's origin; records carry revision and argv digest") {
    TempDir dir;
    const auto path = ten_records(dir);
    const auto report = verify({path});
    CHECK(report.intact);
    CHECK(report.problem.empty());
    CHECK(report.records == 10);
    CHECK(report.notes.empty());
    CHECK(report.last_hash.size() == 64);
    const auto entries = read_audit_log(path, {});
    REQUIRE(entries);
    CHECK(entries->entries[0].prev == std::string(64, '0'));
    CHECK(entries->entries[1].prev.size() == 64);
    CHECK(entries->entries[0].policy_revision == "abc123def456");
    CHECK(entries->entries[0].node == "node-a");
    CHECK(entries->entries[0].argv_sha256.size() == 64);
    CHECK(entries->entries[0].argv_sha256 == entries->entries[1].argv_sha256);  // one request, two records
    CHECK(entries->entries[0].argv_sha256 != entries->entries[2].argv_sha256);
  }

  TEST_CASE("the argv digest tells ['a', 'bc'] from ['ab', 'c'] and digests NUL bytes as they are") {
    TempDir dir;
    const auto path = dir.path() / "audit.jsonl";
    {
      auto log = open_log({.path = path});
      Outcome refused{.execution_id = "x", .decision = {.allowed = false, .rule = "default_deny"}};
      REQUIRE(log->decided({.tool = "a", .args = {"bc"}, .twin_id = "t"}, refused));
      REQUIRE(log->decided({.tool = "ab", .args = {"c"}, .twin_id = "t"}, refused));
      REQUIRE(log->decided({.tool = "ab", .args = {std::string("c\0", 2)}, .twin_id = "t"}, refused));
    }
    const auto entries = read_audit_log(path, {});
    REQUIRE(entries);
    REQUIRE(entries->entries.size() == 3);
    CHECK(entries->entries[0].argv_sha256 != entries->entries[1].argv_sha256);
    CHECK(entries->entries[1].argv_sha256 != entries->entries[2].argv_sha256);
  }

  TEST_CASE("a changed record: the record after it names the break") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    const auto at = lines[4].find("echo 2");
    REQUIRE(at != std::string::npos);
    lines[4].replace(at, 6, "echo 9");  // what was run, rewritten
    write_lines(path, lines);
    const auto report = verify({path});
    CHECK_FALSE(report.intact);
    CAPTURE(report.problem);
    CHECK(mentions(report.problem, path.string() + ":6: the chain breaks here"));
    CHECK(mentions(report.problem, path.string() + ":5 does not"));
    CHECK(mentions(report.problem, "changed, or records between it and this one were removed"));
  }

  TEST_CASE("a removed record: the record after the gap names the break") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    lines.erase(lines.begin() + 3);
    write_lines(path, lines);
    const auto report = verify({path});
    CHECK_FALSE(report.intact);
    CAPTURE(report.problem);
    CHECK(mentions(report.problem, path.string() + ":4: the chain breaks here"));
    CHECK(mentions(report.problem, "were removed"));
  }

  TEST_CASE("swapped records: reported as reordered") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    std::swap(lines[5], lines[6]);
    write_lines(path, lines);
    const auto report = verify({path});
    CHECK_FALSE(report.intact);
    CAPTURE(report.problem);
    CHECK(mentions(report.problem, path.string() + ":6: the chain breaks here: this record follows " + path.string() +
                                       ":7, which comes after it: records were reordered"));
  }

  TEST_CASE("a forged record with a correct link still breaks the chain at the next record") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    auto forged = lines[2];  // a copy of record 3 with what the forger wants, linked as record 3 is
    const auto at = forged.find("echo 1");
    REQUIRE(at != std::string::npos);
    forged.replace(at, 6, "echo X");
    lines.insert(lines.begin() + 3, forged);
    write_lines(path, lines);
    const auto report = verify({path});
    CHECK_FALSE(report.intact);
    CAPTURE(report.problem);
    CHECK(mentions(report.problem, path.string() + ":4: the chain breaks here"));
  }

  TEST_CASE("a record stripped of its link after the chain began is a break") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    const auto at = lines[7].find(",\"prev\":\"");
    REQUIRE(at != std::string::npos);
    lines[7].erase(at, 9 + 64 + 1);
    write_lines(path, lines);
    const auto report = verify({path});
    CHECK_FALSE(report.intact);
    CAPTURE(report.problem);
    CHECK(mentions(report.problem, path.string() + ":8: this record has no link (prev)"));
  }

  TEST_CASE("rotation and restarts keep one chain across files; a record removed at a file's end is found") {
    TempDir dir;
    const auto path = dir.path() / "audit.jsonl";
    auto rotated = path;
    rotated += ".1";
    write_records(*open_log({.path = path, .rotate_bytes = 4096}), 6);
    REQUIRE(std::filesystem::exists(rotated));
    write_records(*open_log({.path = path, .rotate_bytes = 4096}), 2, 6);  // a restart goes on from the file's end
    const auto whole = verify({rotated, path});
    CHECK(whole.intact);
    CHECK(whole.problem.empty());
    // Only the newer file: it cannot be checked back to the origin, and says so.
    const auto newer = verify({path});
    CHECK(newer.intact);
    REQUIRE(newer.notes.size() == 1);
    CHECK(mentions(newer.notes[0], "the chain starts mid-way at " + path.string() + ":1"));
    auto older = lines_of(rotated);
    older.pop_back();
    write_lines(rotated, older);
    const auto cut = verify({rotated, path});
    CHECK_FALSE(cut.intact);
    CAPTURE(cut.problem);
    CHECK(mentions(cut.problem, path.string() + ":1: the chain breaks here"));
  }

  TEST_CASE("a log started after a rotation while the server was down links to path.1") {
    TempDir dir;
    const auto path = dir.path() / "audit.jsonl";
    auto rotated = path;
    rotated += ".1";
    write_records(*open_log({.path = path}), 2);
    std::filesystem::rename(path, rotated);
    write_records(*open_log({.path = path}), 2, 2);
    CHECK(verify({rotated, path}).intact);
  }

  TEST_CASE("a write torn by a crash is a note, and the records after the restart still chain") {
    TempDir dir;
    const auto path = ten_records(dir);
    {
      std::ofstream torn(path, std::ios::binary | std::ios::app);
      torn << R"({"type":"execution","time":"2026-)";  // the process died here
    }
    const auto crashed = verify({path});
    CHECK(crashed.intact);
    REQUIRE(crashed.notes.size() == 1);
    CHECK(mentions(crashed.notes[0], ":11: an unfinished last line"));
    write_records(*open_log({.path = path}), 2, 5);
    const auto after = verify({path});
    CHECK(after.intact);
    CHECK(after.records == 14);
    REQUIRE(after.notes.size() == 1);
    CHECK(mentions(after.notes[0], ":11: not a record"));
  }

  TEST_CASE("records written before the chain existed are counted, and the chain links to them") {
    TempDir dir;
    const auto path = ten_records(dir);
    auto lines = lines_of(path);
    for (auto& line : lines) line.erase(line.find(",\"prev\":\""), 9 + 64 + 1);  // an older pagi-exec's log
    write_lines(path, lines);
    write_records(*open_log({.path = path}), 1, 5);
    const auto report = verify({path});
    CHECK(report.intact);
    CHECK(report.records == 12);
    REQUIRE(report.notes.size() == 1);
    CHECK(mentions(report.notes[0], "10 records written before the chain"));
  }

  TEST_CASE("no files, a missing file and a folder are errors") {
    TempDir dir;
    CHECK(verify_audit_chain({}).error().code == Errc::invalid_request);
    const std::vector<std::filesystem::path> missing{dir.path() / "nope.jsonl"};
    CHECK(verify_audit_chain(missing).error().code == Errc::io);
    const std::vector<std::filesystem::path> folder{dir.path()};
    CHECK(verify_audit_chain(folder).error().code == Errc::io);
  }
}
