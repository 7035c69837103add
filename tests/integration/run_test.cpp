// SPDX-License-Identifier: Apache-2.0
// Workspaces: file_write, what later commands see, per-execution folders, hostile paths.
#include <doctest/doctest.h>

#include <unistd.h>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::shell;
using test_support::TempDir;

namespace {
Request write_req(std::string path, std::string content, std::string twin = "twin-sentinel") {
  return Request{.tool = "file_write", .args = {std::move(path), std::move(content)}, .twin_id = std::move(twin)};
}
}  // namespace

TEST_SUITE("workspace") {
  TEST_CASE("file_write lands in the twin's workspace, where its later commands read it") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto written = executor.run(write_req("notes/today.txt", "hello\nworld\n"));
    REQUIRE(written);
    CHECK(written->success());
    CHECK(written->out.lines == std::vector<std::string>{"wrote 12 bytes to notes/today.txt"});
    CHECK(test_support::read_file(dir.path() / "twin-sentinel" / "notes" / "today.txt") == "hello\nworld\n");

    const Request read_back{.tool = "command_exec", .args = {"cat \"$PAGI_WORKSPACE/notes/today.txt\" ../notes/today.txt"},
                            .twin_id = "twin-sentinel"};
    const auto outcome = executor.run(read_back);
    REQUIRE(outcome);
    CHECK(outcome->out.lines == std::vector<std::string>{"hello", "world", "hello", "world"});
  }

  TEST_CASE("file_write overwrites and accepts empty content") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    REQUIRE(executor.run(write_req("f", "long content")));
    REQUIRE(executor.run(write_req("f", "")));
    CHECK(test_support::read_file(dir.path() / "twin-sentinel" / "f").empty());
  }

  TEST_CASE("file_write cannot leave the workspace by spelling") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    for (const char* path : {"../escape", "/etc/pagi-exec-test", "a/../../escape", "", "./x"}) {
      CAPTURE(path);
      const auto outcome = executor.run(write_req(path, "x"));  // a usage error, answered in-band
      REQUIRE(outcome);
      CHECK(outcome->exit_code == exit_usage);
      CHECK_FALSE(outcome->ran);
    }
    CHECK_FALSE(std::filesystem::exists(dir.path() / "escape"));
    CHECK_FALSE(std::filesystem::exists("/etc/pagi-exec-test"));
  }

  TEST_CASE("file_write does not follow a symlink planted in the workspace") {
    TempDir dir;
    const auto outside = dir.path() / "outside";
    std::filesystem::create_directories(outside);
    const auto executor = test_support::make_executor(dir.path() / "sb");
    // A command of the same twin plants links to a folder and a file outside.
    REQUIRE(executor.run(shell("ln -s " + outside.string() + " \"$PAGI_WORKSPACE/link\"; "
                               "ln -s " + (outside / "target").string() + " \"$PAGI_WORKSPACE/file\"")));
    for (const char* path : {"link/pwned", "file"}) {
      CAPTURE(path);
      const auto outcome = executor.run(write_req(path, "pwned", "twin-aegis"));
      REQUIRE(outcome);
      CHECK(outcome->exit_code == exit_usage);
      CHECK_FALSE(outcome->ran);
      CHECK(outcome->message.find("symlink") != std::string::npos);
    }
    CHECK(std::filesystem::is_empty(outside));
  }

  TEST_CASE("file_write refuses wrong argument counts and oversize content") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    CHECK(executor.run({.tool = "file_write", .args = {"only-path"}, .twin_id = "twin-sentinel"})->exit_code == exit_usage);
    CHECK(executor.run(write_req("big", std::string(16 * 1024 * 1024 + 1, 'x')))->exit_code == exit_usage);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "twin-sentinel" / "big"));
  }

  TEST_CASE("each execution gets a fresh folder, removed afterwards; twins are kept apart") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto a = executor.run(shell("pwd; touch left-behind"));
    REQUIRE(a);
    REQUIRE(a->out.lines.size() == 1);
    CHECK(a->out.lines[0] == (dir.path() / "twin-aegis" / a->execution_id).string());
    executor.wait_for_cleanup();
    CHECK_FALSE(std::filesystem::exists(a->out.lines[0]));
    const auto b = executor.run(shell("pwd"));
    REQUIRE(b);
    CHECK(b->out.lines[0] != a->out.lines[0]);
    CHECK((std::filesystem::status(dir.path() / "twin-aegis").permissions() & std::filesystem::perms::others_all) ==
          std::filesystem::perms::none);
  }

  TEST_CASE("an empty working folder is gone when the answer comes; only filled ones wait for the clean-up") {
    // Under load a backlog of folders waiting for removal made every quota walk list them all,
    // and grew the twin's ext4 directory for good (docs/PERFORMANCE.md).
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    const auto empty = executor.run(shell("pwd"));
    REQUIRE(empty);
    REQUIRE(empty->out.lines.size() == 1);
    CHECK_FALSE(std::filesystem::exists(empty->out.lines[0]));  // no wait_for_cleanup
    const auto filled = executor.run(shell("pwd; mkdir -p a/b; echo x > a/b/f"));
    REQUIRE(filled);
    REQUIRE(filled->out.lines.size() == 1);
    executor.wait_for_cleanup();
    CHECK_FALSE(std::filesystem::exists(filled->out.lines[0]));
    CHECK(std::filesystem::is_empty(dir.path() / "twin-aegis"));
  }

  TEST_CASE("a twin id that is not one path component never touches the disk") {
    TempDir dir;
    auto spec = PolicySpec::seed_default();
    // Policy::make refuses such names, so only a hand-built request can carry them; the executor
    // still checks before making folders (defense in depth).
    const auto executor = test_support::make_executor(dir.path() / "sb");
    for (const char* twin : {"../../etc", "a/b", "..", ""}) {
      CAPTURE(twin);
      const auto outcome = executor.run({.tool = "echo", .twin_id = twin});
      if (outcome) {
        CHECK_FALSE(outcome->decision.allowed);  // unknown twins are refused first
      }
    }
    CHECK(std::filesystem::is_empty(dir.path() / "sb"));
  }

  TEST_CASE("history holds allowed and refused requests with their outcome") {
    TempDir dir;
    const auto executor = test_support::make_executor(dir.path());
    REQUIRE(executor.run({.tool = "true", .twin_id = "twin-aegis", .job_id = "job-1"}));
    REQUIRE(executor.run({.tool = "rm", .args = {"-rf", "/"}, .twin_id = "twin-aegis", .job_id = "job-2"}));
    const auto history = executor.history().query({})->records;
    REQUIRE(history.size() == 2);
    CHECK(history[0].job_id == "job-2");
    CHECK_FALSE(history[0].allowed);
    CHECK(history[0].args == std::vector<std::string>{"-rf", "/"});
    CHECK(history[1].allowed);
    CHECK(history[1].ran);
    CHECK(history[1].exit_code == 0);
    CHECK(history[1].finished >= history[1].started);
  }
}
