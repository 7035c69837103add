// SPDX-License-Identifier: Apache-2.0
// Audit log: record contents, capping, invalid UTF-8, rotation, failures and recovery, the reader.
#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::chrono_literals;
using test_support::TempDir;

namespace {

Request sample_request() {
  return Request{.tool = "command_exec", .args = {"echo hi"}, .twin_id = "twin-aegis", .job_id = "job-1", .ns = "ns-a"};
}

Outcome allowed_outcome() {
  return Outcome{.execution_id = "id-1",
                 .decision = {.allowed = true, .reason = "granted", .rule = "twins.twin-aegis.allow[*]"},
                 .isolation = Isolation::native};
}

// Opens a log at `path` or fails the test.
std::shared_ptr<AuditLog> open_log(AuditOptions options) {
  auto log = AuditLog::open(std::move(options));
  REQUIRE_MESSAGE(log, (log ? "" : log.error().message()));
  return *log;
}

std::vector<AuditEntry> read_all(const std::filesystem::path& path) {
  auto report = read_audit_log(path, {});
  REQUIRE_MESSAGE(report, (report ? "" : report.error().message()));
  CHECK(report->bad_lines == 0);
  CHECK(report->torn_lines == 0);
  return report->entries;
}

bool has(const AuditEntry& entry, const std::string& json) { return entry.raw_json.find(json) != std::string::npos; }

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_SUITE("audit") {
  TEST_CASE("a decision record holds who asked what and the decision") {
    TempDir dir;
    const auto path = dir.path() / "audit.jsonl";
    auto log = open_log({.path = path});
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    const auto entries = read_all(path);
    REQUIRE(entries.size() == 1);
    const auto& e = entries[0];
    CHECK(e.type == "decision");
    CHECK(e.execution_id == "id-1");
    CHECK(e.twin_id == "twin-aegis");
    CHECK_FALSE(e.authenticated_twin);
    CHECK(e.job_id == "job-1");
    CHECK(e.ns == "ns-a");
    CHECK(e.tool == "command_exec");
    CHECK(e.args == std::vector<std::string>{"echo hi"});
    CHECK(e.allowed);
    CHECK(e.rule == "twins.twin-aegis.allow[*]");
    CHECK(e.isolation == "native");
    CHECK(e.outcome() == "allowed");
    CHECK_FALSE(e.exit_code);
    CHECK(has(e, R"({"type":"decision","time":")"));
    CHECK(has(e, R"("authenticated_twin":null)"));
    CHECK(has(e, R"("namespace":"ns-a")"));
    CHECK(has(e, R"("args_truncated":false)"));
    REQUIRE(e.time.size() == 24);  // 2026-11-29T16:48:36.685Z
    CHECK(e.time.back() == 'Z');
    const auto when = parse_rfc3339(e.time);
    REQUIRE(when);
    CHECK(std::chrono::abs(*when - std::chrono::system_clock::now()) < 1h);
    CHECK(log->status().records_written == 1);
    CHECK(log->status().healthy);
  }

  TEST_CASE("a refused request is recorded as refused") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl"});
    auto outcome = allowed_outcome();
    outcome.decision = {.allowed = false, .reason = "twin 'x' is not known", .rule = "default_deny"};
    REQUIRE(log->decided(Request{.tool = "rm", .twin_id = "x"}, outcome));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].outcome() == "refused");
    CHECK(entries[0].reason == "twin 'x' is not known");
    CHECK(has(entries[0], R"("allowed":false,"reason":"twin 'x' is not known","rule":"default_deny")"));
  }

  TEST_CASE("an execution record holds the complete outcome") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl"});
    auto outcome = allowed_outcome();
    outcome.ran = true;
    outcome.exit_code = 0;
    outcome.out = {.lines = {"hi"}, .truncated = true, .total_bytes = 70000};
    outcome.usage = {.cpu_user = 20ms, .cpu_system = 3ms, .max_rss_bytes = 4096, .peak_memory_bytes = 8192};
    outcome.elapsed = 1500ms;
    outcome.message = "exited 0";
    REQUIRE(log->finished(sample_request(), outcome));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 1);
    const auto& e = entries[0];
    CHECK(e.type == "execution");
    CHECK(e.outcome() == "succeeded");
    CHECK(e.exit_code == 0);
    CHECK(e.duration_ms == 1500);
    CHECK(e.message == "exited 0");
    for (const char* field : {R"("ran":true,"exit_code":0,"signal":0,"timed_out":false,"cancelled":false,"limit_hit":"")",
                              R"("duration_ms":1500,"cpu_user_ms":20,"cpu_system_ms":3)",
                              R"("max_rss_bytes":4096,"peak_memory_bytes":8192)", R"("stdout_bytes":70000)",
                              R"("stdout_truncated":true,"stderr_truncated":false)", R"("isolation":"native")"}) {
      CHECK_MESSAGE(has(e, field), field);
    }
    const auto started = e.raw_json.find(R"("started":")");
    REQUIRE(started != std::string::npos);
    const auto start = parse_rfc3339(e.raw_json.substr(started + 11, 24));
    REQUIRE(start);
    CHECK(*parse_rfc3339(e.time) - *start == 1500ms);
  }

  TEST_CASE("egress connections are records of their own; a run's totals are in its execution record") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    auto log = open_log({.path = path, .node = "node-7"});
    const EgressConnection allowed{.twin = "twin-aegis", .execution_id = "id-1", .method = "CONNECT",
                                   .host = "pypi.org", .port = 443, .address = "192.0.2.7", .allowed = true,
                                   .rule = "egress.allow_domains[pypi.org]", .bytes_up = 512, .bytes_down = 70000,
                                   .duration = 250ms};
    const EgressConnection refused{.twin = "twin-aegis", .execution_id = "id-1", .method = "GET",
                                   .host = "rebind.example", .port = 80, .address = "127.0.0.1", .allowed = false,
                                   .rule = "egress.blocked_address[127.0.0.0/8]",
                                   .reason = "refused: 127.0.0.1 is a loopback address"};
    REQUIRE(log->egress(allowed));
    REQUIRE(log->egress(refused));
    auto outcome = allowed_outcome();
    outcome.ran = true;
    outcome.exit_code = 0;
    outcome.egress = EgressSummary{.allowed = 1, .refused = 1, .bytes_up = 512, .bytes_down = 70000};
    REQUIRE(log->finished(sample_request(), outcome));
    auto report = read_audit_log(path, {});
    REQUIRE(report);
    REQUIRE(report->entries.size() == 3);
    const auto& first = report->entries[0];
    CHECK(first.type == "egress");
    CHECK(first.outcome() == "allowed");
    CHECK(first.twin_id == "twin-aegis");
    CHECK(first.execution_id == "id-1");
    CHECK(first.node == "node-7");
    CHECK(first.method == "CONNECT");
    CHECK(first.host == "pypi.org");
    CHECK(first.port == 443);
    CHECK(first.address == "192.0.2.7");
    CHECK(first.rule == "egress.allow_domains[pypi.org]");
    CHECK(first.bytes_up == 512);
    CHECK(first.bytes_down == 70000);
    CHECK(first.duration_ms == 250);
    CHECK(report->entries[1].outcome() == "refused");
    CHECK(report->entries[1].reason == "refused: 127.0.0.1 is a loopback address");
    CHECK(has(report->entries[2], R"("egress_allowed":1,"egress_refused":1,"egress_bytes_up":512,"egress_bytes_down":70000)"));
    // Counted apart from decisions and executions, and chained like every record.
    CHECK(report->egress_allowed == 1);
    CHECK(report->egress_refused == 1);
    CHECK(report->decisions == 0);
    CHECK(report->executions == 1);
    const std::vector<std::filesystem::path> files{path};
    const auto chain = verify_audit_chain(files);
    REQUIRE(chain);
    CHECK(chain->intact);
    CHECK(chain->records == 3);
    // The outcome filter finds a refused connection like a refused request.
    auto refusals = read_audit_log(path, {.outcome = "refused"});
    REQUIRE(refusals);
    REQUIRE(refusals->entries.size() == 1);
    CHECK(refusals->entries[0].host == "rebind.example");
  }

  TEST_CASE("failed and timed-out executions are told apart") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    auto log = open_log({.path = path});
    auto failed = allowed_outcome();
    failed.exit_code = exit_not_found;
    failed.message = "command not found";
    auto timed_out = allowed_outcome();
    timed_out.ran = true;
    timed_out.exit_code = exit_timeout;
    timed_out.signal = 9;
    timed_out.timed_out = true;
    timed_out.limit_hit = LimitHit::timeout;
    timed_out.message = timeout_message;
    REQUIRE(log->finished(sample_request(), failed));
    REQUIRE(log->finished(sample_request(), timed_out));
    const auto entries = read_all(path);
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].outcome() == "failed");
    CHECK_FALSE(entries[0].ran);
    CHECK(entries[0].exit_code == 127);
    CHECK(entries[1].outcome() == "timed_out");
    CHECK(entries[1].limit_hit == "execution_timeout");
    CHECK(entries[1].signal == 9);
    CHECK(has(entries[1], R"("exit_code":124,"signal":9,"timed_out":true)"));
  }

  TEST_CASE("the authenticated twin comes from Request::authenticated_twin") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl"});
    auto request = sample_request();
    request.authenticated_twin = "twin-sentinel";
    REQUIRE(log->decided(request, allowed_outcome()));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].authenticated_twin == "twin-sentinel");
    CHECK(entries[0].twin_id == "twin-aegis");
  }

  TEST_CASE("arguments are capped one by one and in total, never inside a UTF-8 character") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl", .max_arg_bytes = 8, .max_args_total_bytes = 20});
    auto request = sample_request();
    request.args = {"0123456789", "abc", "xxxxxxxxxxxx", "yy", "z"};
    REQUIRE(log->decided(request, allowed_outcome()));
    request.args = {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"};  // "ééééé": 10 bytes, cut at 8 stays whole
    request.tool = std::string(100, 't');
    REQUIRE(log->decided(request, allowed_outcome()));
    request.args = {"short"};
    REQUIRE(log->decided(request, allowed_outcome()));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].args == std::vector<std::string>{"01234567", "abc", "xxxxxxxx", "y"});
    CHECK(entries[0].args_truncated);
    CHECK(has(entries[0], R"("arg_count":5)"));
    CHECK(entries[1].args == std::vector<std::string>{"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"});
    CHECK(entries[1].tool == std::string(8, 't'));
    CHECK_FALSE(entries[2].args_truncated);
    CHECK(entries[2].args == std::vector<std::string>{"short"});
  }

  TEST_CASE("an outcome's message is capped like a request string: it may quote the request") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl", .max_arg_bytes = 16});
    auto outcome = allowed_outcome();
    outcome.message = "program not found: " + std::string(1 << 20, 'x');
    REQUIRE(log->finished(sample_request(), outcome));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].message == "program not foun");
    CHECK(entries[0].raw_json.size() < 4096);
  }

  TEST_CASE("invalid UTF-8 in arguments and messages never breaks a record") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl", .max_arg_bytes = 3});
    auto request = sample_request();
    request.args = {"\xFF\xFE", "ok\xC3", "\xE2\x82\xAC\xE2\x82\xAC", std::string("nul\0x", 5)};
    auto outcome = allowed_outcome();
    outcome.message = "\x80 bad byte";  // first: the message is cut to max_arg_bytes too
    REQUIRE(log->decided(request, outcome));
    REQUIRE(log->finished(request, outcome));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 2);
    const auto& args = entries[0].args;
    REQUIRE(args.size() == 4);
    CHECK(args[0].find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD
    CHECK(args[0].find('\xFF') == std::string::npos);
    CHECK(args[1].rfind("ok", 0) == 0);
    CHECK(args[2] == "\xE2\x82\xAC");
    CHECK(args[3] == std::string("nul", 3));
    CHECK(entries[1].message.find("\xEF\xBF\xBD") != std::string::npos);
  }

  TEST_CASE("rotates by size into path.1, replacing an older one") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    auto rotated = path;
    rotated += ".1";
    auto log = open_log({.path = path, .rotate_bytes = 2000});
    auto request = sample_request();
    for (int i = 0; i < 30; ++i) {
      request.job_id = "job-" + std::to_string(i);
      REQUIRE(log->decided(request, allowed_outcome()));
    }
    CHECK(std::filesystem::file_size(path) <= 2000);
    CHECK(std::filesystem::file_size(rotated) <= 2000);
    CHECK(std::filesystem::file_size(rotated) > 1000);
    const auto current = read_all(path);
    const auto older = read_all(rotated);
    REQUIRE_FALSE(current.empty());
    REQUIRE_FALSE(older.empty());
    CHECK(current.back().job_id == "job-29");
    CHECK(older.back().job_id == "job-" + std::to_string(29 - static_cast<int>(current.size())));
    CHECK(current.size() + older.size() < 30);  // the first .1 was replaced
    CHECK(log->status().records_written == 30);
  }

  TEST_CASE("reopen starts a new file after logrotate renamed the old one") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    auto log = open_log({.path = path});
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    std::filesystem::rename(path, dir.path() / "a.jsonl.old");
    REQUIRE(log->reopen());
    CHECK(std::filesystem::exists(path));
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    CHECK(read_all(path).size() == 1);
    CHECK(read_all(dir.path() / "a.jsonl.old").size() == 1);
  }

  TEST_CASE("a record after the file was removed goes to a new file, not to the unlinked one") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    auto log = open_log({.path = path});
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    std::filesystem::remove(path);
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    CHECK(read_all(path).size() == 1);
  }

  TEST_CASE("an unwritable path is an io error with the path and a fix; the log recovers") {
    SUBCASE("a path under /proc cannot be opened") {
      const auto log = AuditLog::open({.path = "/proc/pagi-exec-audit-test.jsonl"});
      REQUIRE_FALSE(log);
      CHECK(log.error().code == Errc::io);
      CHECK(log.error().message().find("/proc/pagi-exec-audit-test.jsonl") != std::string::npos);
    }
    SUBCASE("the folder disappears, then comes back") {
      TempDir dir;
      const auto folder = dir.path() / "logs";
      std::filesystem::create_directory(folder);
      auto log = open_log({.path = folder / "a.jsonl"});
      REQUIRE(log->decided(sample_request(), allowed_outcome()));
      std::filesystem::remove_all(folder);
      const auto failed = log->decided(sample_request(), allowed_outcome());
      REQUIRE_FALSE(failed);
      CHECK(failed.error().code == Errc::io);
      CHECK(failed.error().sys_errno == ENOENT);
      CHECK(failed.error().message().find("create its folder") != std::string::npos);
      auto status = log->status();
      CHECK_FALSE(status.healthy);
      CHECK(status.last_error == failed.error().message());
      CHECK(status.records_failed == 1);
      std::filesystem::create_directory(folder);
      REQUIRE(log->decided(sample_request(), allowed_outcome()));
      status = log->status();
      CHECK(status.healthy);
      CHECK(status.records_written == 2);
      CHECK(read_all(folder / "a.jsonl").size() == 1);
    }
    SUBCASE("a full disk (/dev/full)") {
      if (!std::filesystem::exists("/dev/full")) return;
      auto log = open_log({.path = "/dev/full"});
      const auto failed = log->finished(sample_request(), allowed_outcome());
      REQUIRE_FALSE(failed);
      CHECK(failed.error().sys_errno == ENOSPC);
      CHECK(failed.error().message().find("free space") != std::string::npos);
      CHECK_FALSE(log->status().healthy);
    }
  }

  TEST_CASE("invalid options are refused") {
    CHECK(AuditLog::open({}).error().code == Errc::invalid_config);
    CHECK(AuditLog::open({.path = "/tmp/x", .max_arg_bytes = 0}).error().code == Errc::invalid_config);
    const auto no_interval = AuditLog::open({.path = "/tmp/x", .sync = AuditOptions::Sync::interval, .sync_interval = 0ms});
    CHECK(no_interval.error().code == Errc::invalid_config);
  }

  TEST_CASE("a torn line left by a crash does not swallow the next record") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    write_text(path, R"({"type":"decision","execution_id":"x","ti)");
    auto log = open_log({.path = path, .required = true});
    CHECK(log->required());
    REQUIRE(log->decided(sample_request(), allowed_outcome()));
    const auto report = read_audit_log(path, {});
    REQUIRE(report);
    CHECK(report->bad_lines == 1);
    CHECK(report->torn_lines == 0);
    CHECK(report->entries.size() == 1);
  }

  TEST_CASE("concurrent appends each give one whole line (Sync::interval)") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    {
      auto log = open_log({.path = path, .sync = AuditOptions::Sync::interval, .sync_interval = 5ms});
      std::vector<std::thread> threads;
      for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&log, t] {
          auto request = sample_request();
          request.args = {std::string(static_cast<std::size_t>(100 + 50 * t), static_cast<char>('a' + t))};
          for (int i = 0; i < 50; ++i) CHECK(log->decided(request, allowed_outcome()));
        });
      }
      for (auto& thread : threads) thread.join();
      CHECK(log->sync());
      CHECK(log->status().records_written == 400);
    }
    CHECK(read_all(path).size() == 400);
  }

  TEST_CASE("the reader filters by twin, job, outcome and time") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    write_text(path,
               R"({"type":"decision","time":"2026-11-29T10:00:00.000Z","execution_id":"1","twin_id":"a","job_id":"j1","allowed":true})" "\n"
               R"({"type":"execution","time":"2026-11-29T10:00:01.000Z","execution_id":"1","twin_id":"a","job_id":"j1","allowed":true,"ran":true,"exit_code":0})" "\n"
               R"({"type":"decision","time":"2026-11-29T11:00:00.000Z","execution_id":"2","twin_id":"b","job_id":"j2","allowed":false})" "\n"
               R"({"type":"execution","time":"2026-11-29T12:00:00.000Z","execution_id":"3","twin_id":"b","authenticated_twin":"c","job_id":"j3","allowed":true,"ran":true,"exit_code":124,"timed_out":true})" "\n"
               R"({"type":"execution","time":"2026-11-29T13:00:00.000Z","execution_id":"4","twin_id":"a","job_id":"j4","allowed":true,"ran":false,"exit_code":127})" "\n");
    const auto ids = [&](const AuditFilter& filter) {
      auto report = read_audit_log(path, filter);
      REQUIRE(report);
      std::string out;
      for (const auto& e : report->entries) out += e.execution_id;
      return out;
    };
    CHECK(ids({}) == "11234");
    CHECK(ids({.twin = "a"}) == "114");
    CHECK(ids({.twin = "c"}) == "3");
    CHECK(ids({.job = "j1"}) == "11");
    CHECK(ids({.outcome = "allowed"}) == "1");
    CHECK(ids({.outcome = "refused"}) == "2");
    CHECK(ids({.outcome = "succeeded"}) == "1");
    CHECK(ids({.outcome = "failed"}) == "4");
    CHECK(ids({.outcome = "timed_out"}) == "3");
    CHECK(ids({.since = parse_rfc3339("2026-11-29T11:00:00Z")}) == "234");
    CHECK(ids({.until = parse_rfc3339("2026-11-29T12:00:00Z")}) == "112");
    CHECK(ids({.twin = "b", .since = parse_rfc3339("2026-11-29T11:30:00+00:00")}) == "3");
    const auto all = read_audit_log(path, {});
    REQUIRE(all);
    CHECK(all->lines == 5);
    CHECK(all->decisions == 2);
    CHECK(all->refused == 1);
    CHECK(all->executions == 3);
    CHECK(all->succeeded == 1);
    CHECK(all->failed == 1);
    CHECK(all->timed_out == 1);
  }

  TEST_CASE("the reader reports a torn last line and counts bad lines") {
    TempDir dir;
    const auto path = dir.path() / "a.jsonl";
    write_text(path, R"({"type":"decision","time":"2026-11-29T10:00:00.000Z","execution_id":"1"})" "\n"
                     "not json\n"
                     "\n"
                     R"([1,2])" "\n"
                     R"({"type":"decision","time":"2026-11-29T10:00:00.000Z","execution_id":"2"})" "\n"
                     R"({"type":"execution","time":"2026-11-29T10:0)");
    const auto report = read_audit_log(path, {});
    REQUIRE(report);
    CHECK(report->lines == 6);
    CHECK(report->bad_lines == 2);
    CHECK(report->torn_lines == 1);
    CHECK(report->entries.size() == 2);
  }

  TEST_CASE("the reader refuses an unknown outcome and a missing file") {
    TempDir dir;
    CHECK(read_audit_log(dir.path() / "missing", {}).error().code == Errc::io);
    CHECK(read_audit_log(dir.path(), {}).error().code == Errc::io);
    write_text(dir.path() / "a", "");
    CHECK(read_audit_log(dir.path() / "a", {.outcome = "maybe"}).error().code == Errc::invalid_request);
  }

  TEST_CASE("times are RFC 3339 in UTC with milliseconds") {
    using namespace std::chrono;
    const auto t = sys_days{2026y / 11 / 29} + 16h + 48min + 36s + 685ms + 999us;
    CHECK(to_rfc3339(t) == "2026-11-29T16:48:36.685Z");
    CHECK(parse_rfc3339("2026-11-29T16:48:36.685Z") == floor<milliseconds>(t));
    CHECK(parse_rfc3339("2026-11-29T18:48:36.685+02:00") == floor<milliseconds>(t));
    CHECK(parse_rfc3339("2026-11-29t16:48:36z") == floor<seconds>(t));
    CHECK(parse_rfc3339("2026-11-29") == sys_days{2026y / 11 / 29});
    for (const char* bad : {"", "2026-11-31", "2026-11-29T24:00:00Z", "2026-11-29T16:48:36", "2026-11-29T16:48:36.Z",
                            "2026-11-29T16:48:36Zjunk", "yesterday"}) {
      CHECK_FALSE_MESSAGE(parse_rfc3339(bad), bad);
    }
  }

  TEST_CASE("a decision's unjudgeable notes are in its record; arguments keep a 4 KiB prefix by default") {
    TempDir dir;
    auto log = open_log({.path = dir.path() / "a.jsonl"});
    auto request = sample_request();
    request.args = std::vector<std::string>(100, std::string(1000, 'a'));
    auto outcome = allowed_outcome();
    outcome.decision.notes = {"unjudgeable: `python3` runs code the scanner cannot read"};
    REQUIRE(log->decided(request, outcome));
    const auto entries = read_all(dir.path() / "a.jsonl");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].notes == outcome.decision.notes);
    CHECK(entries[0].args_truncated);
    std::size_t kept = 0;
    for (const auto& arg : entries[0].args) kept += arg.size();
    CHECK(kept <= pagi_exec::max_recorded_args_bytes);
    CHECK(has(entries[0], R"("arg_count":100)"));
  }
}

