// SPDX-License-Identifier: Apache-2.0
// favordynmods, set through a cgroup2 mount that only a short-lived thread ever sees.
#include "sys/cgroup_tuning.hpp"

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <thread>

namespace pagi_exec::sys {
namespace {

// Where the private mount goes: it exists wherever cgroups are mounted, and in the thread's
// own mount namespace covering it hides nothing from anyone else.
constexpr const char* mount_point = "/sys/fs/cgroup";

// On the calling thread only: its own mount namespace (CLONE_NEWNS implies CLONE_FS for it),
// made private so nothing propagates back to the host's, then the mount and its removal.
Result<void> mount_with_favordynmods() {
  if (::unshare(CLONE_NEWNS) != 0) return fail(Errc::sandbox_setup, "unshare a private mount namespace", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return fail(Errc::sandbox_setup, "make the private mount namespace private", errno);
  }
  if (::mount("cgroup2", mount_point, "cgroup2", 0, "favordynmods") != 0) {
    const int err = errno;
    if (err == EINVAL) {
      return fail(Errc::sandbox_setup,
                  "mount cgroup2 with favordynmods: this kernel does not offer the option (Linux 6.0 or later)", err);
    }
    return fail(Errc::sandbox_setup, std::string("mount cgroup2 with favordynmods on ") + mount_point, err);
  }
  ::umount2(mount_point, MNT_DETACH);  // the namespace goes with the thread anyway
  return {};
}

}  // namespace

Result<void> favor_cgroup_moves() {
  Result<void> result;
  std::thread([&result] { result = mount_with_favordynmods(); }).join();
  return result;
}

}  // namespace pagi_exec::sys
