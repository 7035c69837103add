// SPDX-License-Identifier: Apache-2.0
// favordynmods is turned on without leaving a mount behind in the host's mount namespace.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "sys/cgroup_tuning.hpp"
#include "test_support.hpp"

namespace {

// The host's mounts, as "mount id + mount point" (options left out: they are what changes).
std::set<std::string> mount_points() {
  std::ifstream in("/proc/self/mountinfo");
  std::set<std::string> points;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    points.insert(id + " " + point);
  }
  return points;
}

// The options of the first cgroup2 mount the host has, or "" without one.
std::string cgroup2_options() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto fs = line.find(" - cgroup2 ");
    if (fs != std::string::npos) return line.substr(fs);
  }
  return {};
}

}  // namespace

TEST_SUITE("cgroup_tuning") {
  TEST_CASE("favordynmods is turned on and no mount is left in the host's namespace" *
            test_support::skip_if(::geteuid() != 0, "needs root, to mount the cgroup hierarchy")) {
    const auto before = mount_points();
    const auto tuned = pagi_exec::sys::favor_cgroup_moves();
    REQUIRE_MESSAGE(tuned, (tuned ? std::string() : tuned.error().message()));
    CHECK(mount_points() == before);
    // The option belongs to the hierarchy: a cgroup2 mount the host already has now shows it.
    const auto options = cgroup2_options();
    if (!options.empty()) CHECK(options.find("favordynmods") != std::string::npos);
  }
}
