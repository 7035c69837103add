// SPDX-License-Identifier: Apache-2.0
// Where a host finds the pagi-spawner program (spawner.hpp): the variable, the build tree, the
// installed copy beside the host, and the folders a trusted program may sit in.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <pagi_exec/spawner.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path self = fs::read_symlink("/proc/self/exe");

// Unsets PAGI_EXEC_SPAWNER for the scope (meson sets it for some tests), restoring it after.
class NoSpawnerVariable {
 public:
  NoSpawnerVariable() {
    if (const char* value = std::getenv("PAGI_EXEC_SPAWNER"); value != nullptr) saved_ = value;
    ::unsetenv("PAGI_EXEC_SPAWNER");
  }
  ~NoSpawnerVariable() {
    if (saved_) ::setenv("PAGI_EXEC_SPAWNER", saved_->c_str(), 1);
  }
  NoSpawnerVariable(const NoSpawnerVariable&) = delete;
  NoSpawnerVariable& operator=(const NoSpawnerVariable&) = delete;

 private:
  std::optional<std::string> saved_;
};

fs::path make_program(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "#!/bin/sh\n";
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  return path;
}

}  // namespace

TEST_SUITE("spawner_location") {
  TEST_CASE("PAGI_EXEC_SPAWNER wins over every location, empty included") {
    NoSpawnerVariable scope;
    const pagi_exec::SpawnerLocation where{.build_root = self.parent_path(), .built = "/built", .from_bindir = "x"};
    ::setenv("PAGI_EXEC_SPAWNER", "/chosen/pagi-spawner", 1);
    CHECK(pagi_exec::spawner_program(where) == fs::path("/chosen/pagi-spawner"));
    ::setenv("PAGI_EXEC_SPAWNER", "", 1);
    CHECK(pagi_exec::spawner_program(where) == fs::path());
  }

  TEST_CASE("a host running inside its build tree takes the build tree's program") {
    NoSpawnerVariable scope;
    const auto program = pagi_exec::spawner_program(
        {.build_root = self.parent_path().parent_path(), .built = "/build/apps/pagi-spawner/pagi-spawner",
         .from_bindir = "../libexec/pagi-exec/pagi-spawner"});
    REQUIRE(program);
    CHECK(*program == fs::path("/build/apps/pagi-spawner/pagi-spawner"));
  }

  TEST_CASE("a host outside its build tree takes the installed program beside it, whatever the working folder") {
    NoSpawnerVariable scope;
    test_support::TempDir dir;
    const auto installed = make_program(dir.path() / "libexec" / "pagi-exec" / "pagi-spawner");
    const auto cwd = fs::current_path();
    fs::current_path(dir.path());
    const auto program = pagi_exec::spawner_program(
        {.build_root = dir.path() / "elsewhere", .built = "/build/pagi-spawner",
         .from_bindir = fs::relative(installed, self.parent_path())});
    fs::current_path(cwd);
    REQUIRE(program);
    CHECK(fs::equivalent(*program, installed));
    CHECK(program->is_absolute());
  }

  TEST_CASE("an installed host whose program is missing fails, naming where it looked and the way out") {
    NoSpawnerVariable scope;
    test_support::TempDir dir;
    const auto program = pagi_exec::spawner_program(
        {.build_root = dir.path(), .built = "/build/pagi-spawner", .from_bindir = "../libexec/none/pagi-spawner"});
    REQUIRE_FALSE(program);
    CHECK(program.error().code == pagi_exec::Errc::spawn_failed);
    const auto message = program.error().message();
    CHECK(message.find((self.parent_path().parent_path() / "libexec/none/pagi-spawner").string()) != std::string::npos);
    CHECK(message.find("PAGI_EXEC_SPAWNER") != std::string::npos);
  }

  TEST_CASE("a program in a folder others may write to is refused; in a sticky one, as in /tmp, it is not") {
    test_support::TempDir dir;
    const auto open_folder = dir.path() / "open";
    const auto program = make_program(open_folder / "pagi-spawner");
    REQUIRE(::chmod(open_folder.c_str(), 0777) == 0);
    auto started = pagi_exec::start_spawn_helper(program);
    REQUIRE_FALSE(started);
    CHECK(started.error().message().find("may be replaced by others: " + open_folder.string()) != std::string::npos);

    // Sticky (as /tmp): only a file's owner may rename or delete it, so the folder passes. The
    // start goes on and fails later for another reason (this stand-in exits at once).
    REQUIRE(::chmod(open_folder.c_str(), 01777) == 0);
    started = pagi_exec::start_spawn_helper(program);
    REQUIRE_FALSE(started);
    CHECK(started.error().message().find("may be") == std::string::npos);
  }
}
