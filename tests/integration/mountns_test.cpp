// SPDX-License-Identifier: Apache-2.0
// The native root's mount steps: a step that fails names the path it failed on, as bubblewrap's
// errors do.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <string>

#include "sys/mountns.hpp"
#include "test_support.hpp"

using pagi_exec::sys::describe;
using pagi_exec::sys::RootPlan;
using pagi_exec::sys::RootStep;
using test_support::TempDir;

namespace {

RootPlan plan_in(const TempDir& dir) {
  auto plan = pagi_exec::sys::plan_root((dir.path() / "root").string(), 1 << 20, 1 << 20, 65534, 65534, {});
  REQUIRE(plan);
  return *plan;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("mountns") {
  TEST_CASE("every root step's message names the path it failed on") {
    TempDir dir;
    const auto plan = plan_in(dir);
    const auto root = (dir.path() / "root").string();
    CHECK(describe(plan, {RootStep::mount_root, 0}, false) == "mount tmpfs on " + root);
    CHECK(describe(plan, {RootStep::make_dirs, 2}, false) == "mkdir " + plan.dirs[2]);
    CHECK(describe(plan, {RootStep::bind_system, 0}, false) == "bind /usr on " + root + "/usr read-only");
    CHECK(describe(plan, {RootStep::make_links, 0}, false) ==
          "symlink " + plan.links[0].path + " -> " + plan.links[0].target);
    CHECK(describe(plan, {RootStep::write_files, 0}, false) == "write " + root + "/etc/passwd");
    CHECK(describe(plan, {RootStep::make_devices, 0}, false) == "create " + root + "/dev/null");
    CHECK(describe(plan, {RootStep::mount_proc, 0}, false) == "mount proc on " + root + "/proc");
    CHECK(describe(plan, {RootStep::mount_tmp, 0}, false) == "mount tmpfs on " + root + "/tmp");
    CHECK(describe(plan, {RootStep::mount_work, 0}, false) == "mount tmpfs on " + root + "/work");
    CHECK(describe(plan, {RootStep::bind_workspace, 0}, false, "/srv/twin-a") ==
          "bind /srv/twin-a on " + root + "/workspace read-only");
    CHECK(describe(plan, {RootStep::pivot_root, 0}, false) == "pivot_root into " + root);
  }

  TEST_CASE("inside the template's root the per-execution mounts are named by their path there") {
    TempDir dir;
    const auto plan = plan_in(dir);
    CHECK(describe(plan, {RootStep::mount_proc, 0}, true) == "mount proc on /proc");
    CHECK(describe(plan, {RootStep::mount_work, 0}, true) == "mount tmpfs on /work");
    CHECK(contains(describe(plan, {RootStep::bind_workspace, 0}, true), "/workspace"));
  }

  TEST_CASE("an entry a report cannot have is shown as '?', not read out of bounds") {
    TempDir dir;
    const auto plan = plan_in(dir);
    CHECK(describe(plan, {RootStep::make_dirs, 100000}, false) == "mkdir ?");
    CHECK(describe(plan, {RootStep::bind_system, -1}, false) == "bind ? read-only");
  }

  TEST_CASE("a bind that fails while the template namespace is built names its source and target" *
            test_support::skip_if(::geteuid() != 0, "the template namespace needs root")) {
    TempDir dir;
    auto plan = plan_in(dir);
    const auto missing = (dir.path() / "no-such-folder").string();
    plan.ro_binds.push_back({missing, plan.workspace, 0});
    const auto made = pagi_exec::sys::make_template_namespace(plan);
    REQUIRE_FALSE(made);
    CHECK(made.error().code == pagi_exec::Errc::sandbox_setup);
    CHECK(made.error().sys_errno == ENOENT);
    CHECK(made.error().message() ==
          "template namespace: bind " + missing + " on " + plan.workspace + " read-only: No such file or directory");
  }
}
