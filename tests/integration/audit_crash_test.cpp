// SPDX-License-Identifier: Apache-2.0
// Audit log crash safety: a writer killed with SIGKILL mid-stream loses no acknowledged record and
// tears at most the last line; the CLI reads such a file and says so.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

constexpr std::uint64_t max_records = 1000;  // the child never gets near: it runs out of credit first

Request numbered_request(std::uint64_t i, std::size_t arg_bytes) {
  return Request{.tool = "command_exec",
                 .args = {std::string(arg_bytes, static_cast<char>('a' + i % 26))},
                 .twin_id = "twin-aegis",
                 .job_id = "job-" + std::to_string(i)};
}

// The child: takes one byte of credit from `credit_fd` per record, appends it, and after each call
// that returned writes the count to `ack_fd`. Out of credit, it blocks until it is killed.
[[noreturn]] void append_in_child(const std::filesystem::path& path, AuditOptions::Sync sync, int credit_fd,
                                  int ack_fd, unsigned seed) {
  constexpr std::size_t max_bytes = 2 << 20;  // big records: a kill often lands inside write(2)
  auto log = AuditLog::open({.path = path, .sync = sync, .max_arg_bytes = max_bytes, .max_args_total_bytes = max_bytes});
  if (!log) ::_exit(3);
  std::mt19937 rng(seed);
  for (std::uint64_t i = 0; i < max_records; ++i) {
    char credit = 0;
    if (::read(credit_fd, &credit, 1) != 1) ::_exit(6);
    const auto request = numbered_request(i, rng() % max_bytes);
    const Outcome outcome{.execution_id = "id-" + std::to_string(i), .decision = {.allowed = true}};
    const auto done = i % 2 == 0 ? (*log)->decided(request, outcome) : (*log)->finished(request, outcome);
    if (!done) ::_exit(4);
    const std::uint64_t acked = i + 1;
    if (::write(ack_fd, &acked, sizeof acked) != sizeof acked) ::_exit(5);
  }
  for (;;) ::pause();
}

// Reads acknowledgements until `stop_after` have come, then lets the child go on for `spins`
// sched_yield calls (a point somewhere in its next record) and SIGKILLs it; reads on to the end of
// the pipe. Returns the last count the child acknowledged.
std::uint64_t acks_until_killed(int fd, pid_t child, std::uint64_t stop_after, std::uint64_t spins) {
  std::uint64_t acked = 0;
  bool killed = false;
  std::vector<char> pending;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    pending.insert(pending.end(), buf, buf + n);
    std::size_t used = 0;
    for (; pending.size() - used >= sizeof acked; used += sizeof acked) {
      std::memcpy(&acked, pending.data() + used, sizeof acked);
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
    if (!killed && acked >= stop_after) {
      for (std::uint64_t i = 0; i < spins; ++i) ::sched_yield();
      REQUIRE(::kill(child, SIGKILL) == 0);
      killed = true;
    }
  }
  REQUIRE(killed);
  return acked;
}

// Every line ending in '\n' is one whole JSON object; only a final line without '\n' may be torn.
void check_whole_lines(const std::string& text) {
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    REQUIRE(end > start);
    CHECK(text[start] == '{');
    CHECK(text[end - 1] == '}');
  }
}

// One round: start a writer with credit for `stop_after` + 2 records, kill it after `stop_after`
// acknowledgements and `spins` yields, check the file. Returns whether the last line was torn.
bool crash_round(AuditOptions::Sync sync, unsigned seed, std::uint64_t stop_after, std::uint64_t spins) {
  TempDir dir;
  const auto path = dir.path() / "audit.jsonl";
  int acks[2];
  int credits[2];
  REQUIRE(::pipe2(acks, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(credits, O_CLOEXEC) == 0);
  const std::string credit(stop_after + 2, 'c');
  REQUIRE(::write(credits[1], credit.data(), credit.size()) == static_cast<ssize_t>(credit.size()));
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(acks[0]);
    append_in_child(path, sync, credits[0], acks[1], seed);
  }
  ::close(acks[1]);
  ::close(credits[0]);
  const auto acked = acks_until_killed(acks[0], pid, stop_after, spins);
  ::close(acks[0]);
  ::close(credits[1]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE_MESSAGE(WIFSIGNALED(status), "the writer exited with " << WEXITSTATUS(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  check_whole_lines(test_support::read_file(path));
  const auto report = read_audit_log(path, {});
  REQUIRE(report);
  CHECK(report->bad_lines == 0);
  CHECK(report->torn_lines <= 1);
  // Every acknowledged record is there, in order; at most one more (returned, not yet acknowledged).
  const auto& entries = report->entries;
  CHECK(entries.size() >= acked);
  CHECK(entries.size() <= acked + 1);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    REQUIRE(entries[i].job_id == "job-" + std::to_string(i));
    CHECK(entries[i].type == (i % 2 == 0 ? "decision" : "execution"));
  }
  return report->torn_lines == 1;
}

using Cli = test_support::Ran;

// Runs the built pagi-exec with `args`, capturing stdout and stderr together.
Cli run_cli(const std::vector<std::string>& args) {
  const char* bin = std::getenv("PAGI_EXEC_CLI");
  REQUIRE(bin != nullptr);
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  return test_support::run_program(argv, /*with_stderr=*/true);
}

}  // namespace

TEST_SUITE("audit crash") {
  TEST_CASE("a writer killed mid-stream loses no acknowledged record and tears at most the last line") {
    std::mt19937 rng(20261129);  // fixed: the same kill points every run (up to the scheduler)
    int torn = 0;
    for (unsigned round = 0; round < 12; ++round) {
      const auto sync = round % 2 == 0 ? AuditOptions::Sync::every : AuditOptions::Sync::interval;
      CAPTURE(round);
      const std::uint64_t stop_after = 1 + rng() % 20;
      if (crash_round(sync, round, stop_after, rng() % 20'000)) ++torn;
    }
    MESSAGE(torn << " of 12 rounds ended with a torn last line");
  }

  TEST_CASE("pagi-exec audit reads a crashed log and says the last line is torn") {
    TempDir dir;
    const auto path = (dir.path() / "audit.jsonl").string();
    {
      auto log = AuditLog::open({.path = path});
      REQUIRE(log);
      Outcome outcome{.execution_id = "id-1", .decision = {.allowed = true, .rule = "r"}};
      REQUIRE((*log)->decided(numbered_request(1, 3), outcome));
      outcome.ran = true;
      outcome.exit_code = 0;
      REQUIRE((*log)->finished(numbered_request(1, 3), outcome));
      outcome.execution_id = "id-2";
      outcome.decision = {.allowed = false, .reason = "no", .rule = "default_deny"};
      REQUIRE((*log)->decided(numbered_request(2, 3), outcome));
    }
    std::FILE* file = std::fopen(path.c_str(), "a");
    REQUIRE(file != nullptr);
    std::fputs(R"({"type":"execution","time":"2026-)", file);
    std::fclose(file);

    const auto all = run_cli({"audit", path});
    CHECK(all.status == 0);
    CHECK(all.out.find("id-1") != std::string::npos);
    CHECK(all.out.find("2 decisions (1 refused), 1 execution") != std::string::npos);
    CHECK(all.out.find("torn") != std::string::npos);
    const auto refused = run_cli({"audit", path, "--outcome", "refused", "--json"});
    CHECK(refused.status == 0);
    CHECK(refused.out.rfind(R"({"type":"decision")", 0) == 0);
    CHECK(refused.out.find("id-1") == std::string::npos);
    CHECK(run_cli({"audit", path, "--job", "job-1"}).out.find("id-2") == std::string::npos);
    CHECK(run_cli({"audit", path, "--outcome", "maybe"}).status == 2);
    CHECK(run_cli({"audit", path, "--since", "yesterday"}).status == 2);
    CHECK(run_cli({"audit", path + ".missing"}).status == 2);

    // The chain survives the crash: the torn line is a note, not a break.
    const auto intact = run_cli({"audit", "verify", path});
    CHECK(intact.status == 0);
    CHECK(intact.out.find("note: " + path + ":4: an unfinished last line") != std::string::npos);
    CHECK(intact.out.find("intact: 3 records in " + path) != std::string::npos);
    // A record changed afterwards is named.
    std::string text;
    {
      std::ifstream in(path);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto at = text.find(R"("rule":"r")");  // the first record's rule
    REQUIRE(at != std::string::npos);
    text.replace(at, 10, R"("rule":"x")");
    std::ofstream(path, std::ios::trunc) << text;
    const auto broken = run_cli({"audit", "verify", path});
    CHECK(broken.status == 1);
    CAPTURE(broken.out);
    CHECK(broken.out.find("BROKEN: " + path + ":2: the chain breaks here") != std::string::npos);
    CHECK(run_cli({"audit", "verify", path + ".missing"}).status == 2);
    CHECK(run_cli({"audit"}).status == 2);
  }

  TEST_CASE("pagi-exec audit verify names the record after a changed one, across FILE.1 and FILE") {
    TempDir dir;
    const auto path = (dir.path() / "audit.jsonl").string();
    {
      auto log = AuditLog::open({.path = path, .rotate_bytes = 2048});
      REQUIRE(log);
      for (std::uint64_t i = 0; i < 12; ++i) {
        REQUIRE((*log)->decided(numbered_request(i, 3), Outcome{.execution_id = "id-" + std::to_string(i)}));
      }
    }
    REQUIRE(std::filesystem::exists(path + ".1"));
    const auto intact = run_cli({"audit", "verify", path});
    CHECK(intact.status == 0);
    CHECK(intact.out.find("records in " + path + ".1, " + path + " each follow the one before") != std::string::npos);
    std::string text;
    {
      std::ifstream in(path + ".1");
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto at = text.find("job-");
    REQUIRE(at != std::string::npos);
    text[at + 4] = 'X';  // the first record of the older file, altered
    std::ofstream(path + ".1", std::ios::trunc) << text;
    const auto broken = run_cli({"audit", "verify", path});
    CHECK(broken.status == 1);
    CAPTURE(broken.out);
    CHECK(broken.out.find("BROKEN: " + path + ".1:2: the chain breaks here") != std::string::npos);
  }
}
