// SPDX-License-Identifier: Apache-2.0
// Building the native sandbox's root with as few mount operations as possible
// (see mount_namespaces(7), pivot_root(2)).
#include "sys/mountns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "sys/namespace_holder.hpp"

namespace pagi_exec::sys {
namespace {

std::string slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Flags of the mount holding `path` that a bind of it must keep (a remount inside a user
// namespace may not clear them: EPERM).
unsigned long locked_flags(const std::string& path) {
  struct statvfs st{};
  if (::statvfs(path.c_str(), &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

struct Device {
  const char* name;
  unsigned major, minor;
};
constexpr Device devices[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}};

// Read-only bind: a bind mount (with its submounts when `recursive`), then a remount to make it
// read-only, nosuid, nodev.
bool bind_readonly(const char* source, const char* target, unsigned long extra, bool recursive = true) noexcept {
  if (::mount(source, target, nullptr, MS_BIND | (recursive ? static_cast<unsigned long>(MS_REC) : 0UL), nullptr) != 0) return false;
  return ::mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra, nullptr) == 0;
}

}  // namespace

const char* to_string(RootStep step) noexcept {
  switch (step) {
    case RootStep::none: return "none";
    case RootStep::make_private: return "make mounts private";
    case RootStep::mount_root: return "mount the root tmpfs";
    case RootStep::make_dirs: return "create mount points";
    case RootStep::bind_system: return "bind system folders read-only";
    case RootStep::make_links: return "create symlinks";
    case RootStep::write_files: return "write /etc files";
    case RootStep::make_devices: return "create /dev nodes";
    case RootStep::enter_template: return "enter the template mount namespace";
    case RootStep::unshare_mounts: return "copy the template mount namespace";
    case RootStep::mount_proc: return "mount /proc";
    case RootStep::mount_tmp: return "mount /tmp";
    case RootStep::mount_work: return "mount /work";
    case RootStep::bind_workspace: return "bind the workspace";
    case RootStep::pivot_root: return "pivot_root";
    case RootStep::remount_root_readonly: return "remount / read-only";
  }
  return "unknown";
}

std::vector<SystemDir> system_dirs() {
  std::vector<SystemDir> dirs;
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st{};
    if (::lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[256] = {};
      const auto n = ::readlink(dir, target, sizeof target - 1);
      if (n > 0) dirs.push_back({dir, std::string(target, static_cast<std::size_t>(n))});
    } else if (S_ISDIR(st.st_mode)) {
      dirs.push_back({dir, {}});
    }
  }
  return dirs;
}

std::string work_options_for(const RootPlan& plan, std::uint32_t uid, std::uint32_t gid) {
  return plan.work_options + ",uid=" + std::to_string(uid) + ",gid=" + std::to_string(gid);
}

namespace {

// /etc/passwd and /etc/group naming only the sandbox (the host's would list its accounts). With a
// uid pool every run's id is listed, all named "sandbox"; the pool's first id is the group that
// may read the twin's folder.
std::pair<std::string, std::string> sandbox_users(std::uint32_t uid, std::uint32_t gid, const IdRange& ids) {
  std::string passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n", group = "root:x:0:\n";
  const auto add_user = [&](std::uint32_t user, std::uint32_t user_group) {
    passwd += "sandbox:x:" + std::to_string(user) + ":" + std::to_string(user_group) + ":pagi-exec sandbox:/work:/bin/sh\n";
  };
  add_user(uid, gid);
  group += "sandbox:x:" + std::to_string(gid) + ":\n";
  if (ids.count != 0) {
    group += "workspace:x:" + std::to_string(ids.first) + ":\n";
    for (std::uint32_t id = ids.first + 1; id - ids.first < ids.count; ++id) {
      add_user(id, id);
      group += "sandbox:x:" + std::to_string(id) + ":\n";
    }
  }
  return {std::move(passwd), std::move(group)};
}

// The host folder `path`, bound read-only at the same path inside, when this host has it.
void bind_if_present(RootPlan& plan, const std::string& path) {
  std::error_code ignored;  // a folder we cannot see is left out
  if (!std::filesystem::is_directory(path, ignored)) return;
  plan.dirs.push_back(plan.root + path);
  plan.ro_binds.push_back({path, plan.root + path, locked_flags(path)});
}

}  // namespace

Result<RootPlan> plan_root(const std::string& root, std::uint64_t tmp_bytes, std::uint64_t work_bytes,
                           std::uint32_t uid, std::uint32_t gid, const IdRange& ids) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return fail(Errc::sandbox_setup, "create native root mount point " + root, ec.value());
  RootPlan plan;
  plan.root = root;
  const auto at = [&](const std::string& inside) { return root + inside; };
  plan.proc = at("/proc");
  plan.dev = at("/dev");
  plan.tmp = at("/tmp");
  plan.work = at("/work");
  plan.workspace = at("/workspace");
  plan.dirs = {at("/usr"), at("/etc"), plan.proc, plan.dev, plan.tmp, plan.work, plan.workspace};
  plan.ro_binds.push_back({"/usr", at("/usr"), locked_flags("/usr")});
  // Merged /usr (Debian 12): /bin -> usr/bin is recreated as a link; a real folder is bound.
  for (const auto& dir : system_dirs()) {
    if (!dir.link_target.empty()) {
      plan.links.push_back({dir.link_target, at(dir.path)});
    } else {
      plan.dirs.push_back(at(dir.path));
      plan.ro_binds.push_back({dir.path, at(dir.path), locked_flags(dir.path)});
    }
  }
  bind_if_present(plan, "/etc/alternatives");
  // /etc holds no host secrets: copies of what the dynamic linker and libc need, and users that
  // name only the sandbox.
  auto [passwd, group] = sandbox_users(uid, gid, ids);
  plan.files = {
      {at("/etc/passwd"), std::move(passwd)},
      {at("/etc/group"), std::move(group)},
      {at("/etc/hostname"), "pagi-sandbox\n"},
      {at("/etc/hosts"), "127.0.0.1 localhost pagi-sandbox\n::1 localhost\n"},
      {at("/etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files\n"},
  };
  // resolv.conf and the CA certificates serve twins the policy grants network.
  bind_if_present(plan, "/etc/ssl");
  std::error_code ignored;  // a file we cannot see is left out
  for (const char* file : {"/etc/ld.so.cache", "/etc/localtime", "/etc/resolv.conf"}) {
    if (std::filesystem::exists(file, ignored)) plan.files.push_back({at(file), slurp(file)});
  }
  plan.links.push_back({"/proc/self/fd", at("/dev/fd")});
  plan.links.push_back({"/proc/self/fd/0", at("/dev/stdin")});
  plan.links.push_back({"/proc/self/fd/1", at("/dev/stdout")});
  plan.links.push_back({"/proc/self/fd/2", at("/dev/stderr")});
  plan.links.push_back({"/tmp", at("/dev/shm")});
  plan.root_options = "size=4m,nr_inodes=4096,mode=0755";
  plan.tmp_options = "size=" + std::to_string(tmp_bytes) + ",mode=1777";
  plan.work_options = "size=" + std::to_string(work_bytes) + ",mode=0700";
  return plan;
}

namespace {

// A failure at `step`, entry `item` of its list.
constexpr RootFailure failed(RootStep step, std::size_t item = 0) noexcept {
  return RootFailure{step, static_cast<std::int32_t>(item)};
}

// "<dev>/<name>" into `path` (no allocation here); false when it does not fit.
bool device_path(const RootPlan& plan, const Device& device, char (&path)[4096]) noexcept {
  const auto dev_len = plan.dev.size();
  if (dev_len + 16 > sizeof path) return false;
  std::size_t at = 0;
  for (; at < dev_len; ++at) path[at] = plan.dev[at];
  path[at++] = '/';
  for (const char* c = device.name; *c != '\0'; ++c) path[at++] = *c;
  path[at] = '\0';
  return true;
}

// Device nodes in the root tmpfs (which is not nodev) are cheaper than five bind mounts; where
// mknod is not permitted (a user namespace) the host's nodes are bound instead.
RootFailure make_devices_in_child(const RootPlan& plan) noexcept {
  char path[4096];
  for (std::size_t i = 0; i < std::size(devices); ++i) {
    const Device& device = devices[i];
    if (!device_path(plan, device, path)) return failed(RootStep::make_devices, i);
    if (::mknod(path, S_IFCHR | 0666, makedev(device.major, device.minor)) == 0) {
      ::chmod(path, 0666);  // mknod applies the umask
      continue;
    }
    char host[32] = "/dev/";
    std::size_t h = 5;
    for (const char* c = device.name; *c != '\0'; ++c) host[h++] = *c;
    host[h] = '\0';
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return failed(RootStep::make_devices, i);
    ::close(fd);
    if (::mount(host, path, nullptr, MS_BIND, nullptr) != 0) return failed(RootStep::make_devices, i);
  }
  return {};
}

// The part of the root that is the same for every execution.
RootFailure build_base_in_child(const RootPlan& plan) noexcept {
  // No mount event may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return failed(RootStep::make_private);
  if (::mount("tmpfs", plan.root.c_str(), "tmpfs", MS_NOSUID, plan.root_options.c_str()) != 0) {
    return failed(RootStep::mount_root);
  }
  for (std::size_t i = 0; i < plan.dirs.size(); ++i) {
    if (::mkdir(plan.dirs[i].c_str(), 0755) != 0) return failed(RootStep::make_dirs, i);
  }
  for (std::size_t i = 0; i < plan.ro_binds.size(); ++i) {
    const auto& bind = plan.ro_binds[i];
    if (!bind_readonly(bind.source.c_str(), bind.target.c_str(), bind.extra_flags)) {
      return failed(RootStep::bind_system, i);
    }
  }
  for (std::size_t i = 0; i < plan.links.size(); ++i) {
    const auto& link = plan.links[i];
    if (::symlink(link.target.c_str(), link.path.c_str()) != 0) return failed(RootStep::make_links, i);
  }
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    const auto& file = plan.files[i];
    const int fd = ::open(file.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return failed(RootStep::write_files, i);
    const auto n = ::write(fd, file.content.data(), file.content.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(file.content.size())) return failed(RootStep::write_files, i);
  }
  return make_devices_in_child(plan);
}

// pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path to the
// host's file system (the trick documented in pivot_root(2)). Then the root becomes read-only.
RootFailure pivot_in_child(const RootPlan& plan) noexcept {
  if (::chdir(plan.root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    return failed(RootStep::pivot_root);
  }
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID, nullptr) != 0) {
    return failed(RootStep::remount_root_readonly);
  }
  return {};
}

// The per-execution mounts: a proc of the new PID namespace (it shows the sandbox's processes
// only), private size-capped /tmp and /work.
RootFailure mount_per_execution(const char* proc, const char* tmp, const char* work, const RootPlan& plan,
                                const char* work_options) noexcept {
  if (::mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return failed(RootStep::mount_proc);
  }
  if (::mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, plan.tmp_options.c_str()) != 0) {
    return failed(RootStep::mount_tmp);
  }
  if (::mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, work_options) != 0) return failed(RootStep::mount_work);
  return {};
}

// Entry `item` of `list`, or "?" for an index no plan has (a report is only as good as its child).
template <class List, class Show>
std::string entry(const List& list, std::int32_t item, Show show) {
  if (item < 0 || static_cast<std::size_t>(item) >= std::size(list)) return "?";
  return show(list[static_cast<std::size_t>(item)]);
}

}  // namespace

std::string describe(const RootPlan& plan, RootFailure failure, bool from_template, const std::string& workspace) {
  const auto inside = [&](const std::string& mount_point, const char* in_template) {
    return from_template ? std::string(in_template) : mount_point;
  };
  switch (failure.step) {
    case RootStep::none: return "none";
    case RootStep::make_private: return "make the mounts of / private";
    case RootStep::mount_root: return "mount tmpfs on " + plan.root;
    case RootStep::make_dirs: return "mkdir " + entry(plan.dirs, failure.item, [](const auto& d) { return d; });
    case RootStep::bind_system:
      return "bind " + entry(plan.ro_binds, failure.item,
                             [](const auto& b) { return b.source + " on " + b.target; }) + " read-only";
    case RootStep::make_links:
      return "symlink " + entry(plan.links, failure.item, [](const auto& l) { return l.path + " -> " + l.target; });
    case RootStep::write_files:
      return "write " + entry(plan.files, failure.item, [](const auto& f) { return f.path; });
    case RootStep::make_devices:
      return "create " + entry(devices, failure.item, [&](const Device& d) { return plan.dev + "/" + d.name; });
    case RootStep::mount_proc: return "mount proc on " + inside(plan.proc, "/proc");
    case RootStep::mount_tmp: return "mount tmpfs on " + inside(plan.tmp, "/tmp");
    case RootStep::mount_work: return "mount tmpfs on " + inside(plan.work, "/work");
    case RootStep::bind_workspace:
      return from_template ? "attach the workspace's detached mount at /workspace"
                           : "bind " + workspace + " on " + plan.workspace + " read-only";
    case RootStep::pivot_root: return "pivot_root into " + plan.root;
    case RootStep::remount_root_readonly: return "remount / read-only";
    case RootStep::enter_template: return "enter the template mount namespace";
    case RootStep::unshare_mounts: return "copy the template mount namespace";
  }
  return "unknown step";
}

RootFailure build_root_in_child(const RootPlan& plan, const char* workspace, const char* work_options) noexcept {
  if (const auto failure = build_base_in_child(plan)) return failure;
  const auto failure = mount_per_execution(plan.proc.c_str(), plan.tmp.c_str(), plan.work.c_str(), plan, work_options);
  if (failure) return failure;
  if (!bind_readonly(workspace, plan.workspace.c_str(), 0)) return failed(RootStep::bind_workspace);
  return pivot_in_child(plan);
}

RootFailure enter_template_in_child(int template_fd, const RootPlan& plan, int workspace_tree,
                                    const char* work_options) noexcept {
  if (::setns(template_fd, CLONE_NEWNS) != 0) return failed(RootStep::enter_template);
  if (::unshare(CLONE_NEWNS) != 0) return failed(RootStep::unshare_mounts);
  // setns put us at the template's root, which is already pivoted and read-only.
  if (const auto failure = mount_per_execution("/proc", "/tmp", "/work", plan, work_options)) return failure;
  // The parent's detached copy is already read-only, nosuid and nodev: attaching it is one call
  // (move_mount(2) of an anonymous mount into our namespace).
  if (::syscall(SYS_move_mount, workspace_tree, "", AT_FDCWD, "/workspace", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return failed(RootStep::bind_workspace);
  }
  return {};
}

Result<unique_fd> open_workspace_tree(const std::string& dir) {
  unique_fd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(),
                                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW)));
  if (!tree) return fail(Errc::sandbox_setup, "open_tree " + dir, errno);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.propagation = MS_PRIVATE;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    return fail(Errc::sandbox_setup, "make the workspace mount read-only: " + dir, errno);
  }
  return tree;
}

namespace {

// The template's side: the part of the root every execution shares, pivoted into.
BuildReport build_template_in_child(const void* arg) noexcept {
  const auto& plan = *static_cast<const RootPlan*>(arg);
  auto failure = build_base_in_child(plan);
  if (!failure) failure = pivot_in_child(plan);
  return BuildReport{static_cast<std::int32_t>(failure.step), failure.item, failure ? errno : 0};
}

}  // namespace

Result<unique_fd> make_template_namespace(const RootPlan& plan) {
  auto held = hold_namespace(CLONE_NEWNS, "mnt", build_template_in_child, &plan);
  if (!held) return error_of(held);
  if (const BuildReport& failed = held->failed; failed.step != 0) {
    return fail(Errc::sandbox_setup,
                "template namespace: " + describe(plan, {static_cast<RootStep>(failed.step), failed.item}, false),
                failed.err);
  }
  return std::move(held->ns);
}

}  // namespace pagi_exec::sys
