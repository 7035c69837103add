// SPDX-License-Identifier: Apache-2.0
// cgroup v1 / v2 groups, one per execution in every mode (see cgroups(7)).
//
// Layout: <controller mount>/<this process's cgroup>/pagi-exec-<pid>-<pool>/<n>. Nesting under our own
// group keeps any limit the operator put on the server above ours.
#include "sys/cgroup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>

namespace pagi_exec::sys {
namespace {

namespace fs = std::filesystem;

Result<void> write_file(const fs::path& path, const std::string& value) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail(Errc::sandbox_setup, "open " + path.string(), errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return fail(Errc::sandbox_setup, "write '" + value + "' to " + path.string(), errno);
  }
  return {};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The number after `key` in a "key value" per line file (memory.oom_control, pids.events).
std::uint64_t read_counter(const fs::path& path, const std::string& key) {
  std::istringstream in(read_file(path));
  std::string name;
  std::uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

// The number a one-value file holds (memory.peak), or 0.
std::uint64_t read_number(const fs::path& path) {
  const auto text = read_file(path);
  std::uint64_t value = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc()) return 0;
  return value;
}

// Mount point of a cgroup hierarchy: v1 with `controller` among its options, or v2 ("").
fs::path find_mount(const std::string& controller) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point, options, field;
    fields >> id >> parent >> dev >> root >> mount_point >> options;
    while (fields >> field && field != "-") {}
    std::string type, source, super_options;
    fields >> type >> source >> super_options;
    if (controller.empty() && type == "cgroup2") return mount_point;
    if (!controller.empty() && type == "cgroup") {
      std::istringstream opts(super_options);
      for (std::string opt; std::getline(opts, opt, ',');) {
        if (opt == controller) return mount_point;
      }
    }
  }
  return {};
}

// This process's group in a hierarchy, from /proc/self/cgroup ("4:memory:/a/b" or "0::/a").
std::string own_group(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const auto names = line.substr(first + 1, second - first - 1);
    std::istringstream list(names);
    for (std::string name; std::getline(list, name, ',');) {
      if (name == controller) return line.substr(second + 1);
    }
    if (controller.empty() && names.empty()) return line.substr(second + 1);
  }
  return "/";
}

// The pid in "pagi-exec-<pid>-<pool>", or 0 when the name is not one of ours.
pid_t owner_pid(const std::string& name) {
  constexpr std::string_view prefix = "pagi-exec-";
  if (name.rfind(prefix, 0) != 0) return 0;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  pid_t pid = 0;
  const auto [end, err] = std::from_chars(first, last, pid);
  if (err != std::errc() || end == first || (end != last && *end != '-')) return 0;
  return pid;
}

// Removes the groups of pagi-exec processes that died without cleaning up (kill -9): their
// "pagi-exec-<pid>-<pool>" folder names a pid that no longer exists. Their processes are gone,
// so the groups are empty and rmdir works. Best effort.
void remove_stale_groups(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator entry(dir, ec), end; !ec && entry != end; entry.increment(ec)) {
    const pid_t pid = owner_pid(entry->path().filename().string());
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // not ours, or still alive
    std::error_code group_ec;
    for (fs::directory_iterator group(entry->path(), group_ec), none; !group_ec && group != none;
         group.increment(group_ec)) {
      if (group->is_directory(group_ec)) ::rmdir(group->path().c_str());
    }
    ::rmdir(entry->path().c_str());
  }
}

// A writable parent group for one pool's executions, or an empty path. Named after the process
// and the pool, so several pools (one per spawner) never share groups.

fs::path make_parent(const fs::path& mount, const std::string& own) {
  if (mount.empty()) return {};
  remove_stale_groups(mount / fs::path(own).relative_path());
  static std::atomic<unsigned> pools{0};
  const auto parent = mount / fs::path(own).relative_path() /
                      ("pagi-exec-" + std::to_string(::getpid()) + "-" + std::to_string(pools++));
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return {};
  return parent;
}

}  // namespace

Result<std::shared_ptr<CgroupPool>> make_v2_pool() {
  const auto mount = find_mount("");
  if (mount.empty()) return fail(Errc::sandbox_setup, "no cgroup2 mount");
  const auto own = mount / fs::path(own_group("")).relative_path();
  const auto controllers = read_file(own / "cgroup.controllers");
  if (controllers.find("memory") == std::string::npos || controllers.find("pids") == std::string::npos) {
    return fail(Errc::sandbox_setup, "cgroup v2 at " + own.string() + " offers no memory and pids controllers");
  }
  const auto parent = make_parent(mount, own_group(""));
  if (parent.empty()) return fail(Errc::sandbox_setup, "cgroup v2 subtree " + own.string() + " is not writable", errno);
  if (!write_file(parent / "cgroup.subtree_control", "+memory +pids")) {
    ::rmdir(parent.c_str());
    return fail(Errc::sandbox_setup, "cannot enable memory and pids below " + parent.string());
  }
  return std::shared_ptr<CgroupPool>(new CgroupPool(CgroupPool::Kind::v2, {parent}));
}

Result<std::shared_ptr<CgroupPool>> CgroupPool::make() {
  if (auto v2 = make_v2_pool()) return v2;
  const auto memory = make_parent(find_mount("memory"), own_group("memory"));
  const auto pids = make_parent(find_mount("pids"), own_group("pids"));
  if (memory.empty() || pids.empty()) {
    if (!memory.empty()) ::rmdir(memory.c_str());
    if (!pids.empty()) ::rmdir(pids.c_str());
    return fail(Errc::sandbox_setup, "no writable cgroup v2 subtree with memory and pids, and no writable "
                                     "cgroup v1 memory and pids hierarchies");
  }
  return std::shared_ptr<CgroupPool>(new CgroupPool(Kind::v1, {memory, pids}));
}

CgroupPool::~CgroupPool() {
  for (const auto& dirs : idle_) remove_group(dirs);
  for (const auto& parent : parents_) ::rmdir(parent.c_str());
}

Result<std::vector<fs::path>> CgroupPool::create_group() {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
  }
  std::vector<fs::path> dirs;
  for (const auto& parent : parents_) {
    auto dir = parent / std::to_string(id);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      const int err = errno;
      remove_group(dirs);
      return fail(Errc::sandbox_setup, "mkdir " + dir.string(), err);
    }
    dirs.push_back(std::move(dir));
  }
  return dirs;
}

void CgroupPool::remove_group(const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) {
    // A group can be removed only once its last process is reaped; SIGKILLed processes need
    // a moment to exit, so retry briefly.
    for (int attempt = 0; attempt < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

namespace {

// Writes `limits` into the lease's groups and notes the counters' baselines (they cannot be
// reset).
Result<void> set_limits(CgroupPool::Kind kind, CgroupLease& lease, const CgroupLimits& limits) {
  const auto& memory_dir = lease.dirs.front();
  const auto& pids_dir = lease.dirs.back();
  const auto mem = limits.memory_bytes == 0 ? std::string(kind == CgroupPool::Kind::v1 ? "-1" : "max")
                                            : std::to_string(limits.memory_bytes);
  const auto pids = limits.max_pids == 0 ? std::string("max") : std::to_string(limits.max_pids);
  Result<void> set;
  if (kind == CgroupPool::Kind::v1) {
    // memsw (memory + swap) must stay >= memory: lower it first only after memory is set.
    (void)write_file(memory_dir / "memory.memsw.limit_in_bytes", "-1");
    set = write_file(memory_dir / "memory.limit_in_bytes", mem);
    if (set && ::access((memory_dir / "memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
      set = write_file(memory_dir / "memory.memsw.limit_in_bytes", mem);  // swap cannot bypass the limit
    }
    lease.oom_kills_before = read_counter(memory_dir / "memory.oom_control", "oom_kill");
  } else {
    set = write_file(memory_dir / "memory.max", mem);
    if (set) (void)write_file(memory_dir / "memory.swap.max", "0");
    lease.oom_kills_before = read_counter(memory_dir / "memory.events", "oom_kill");
  }
  if (!set) return set;
  lease.pids_max_before = read_counter(pids_dir / "pids.events", "max");
  return write_file(pids_dir / "pids.max", pids);
}

}  // namespace

Result<CgroupLease> CgroupPool::acquire(const CgroupLimits& limits) {
  CgroupLease lease;
  {
    std::lock_guard lock(mutex_);
    // An idle group someone removed meanwhile (a stale-group sweep of another server sharing
    // the tree) is dropped: a fresh one is made instead.
    while (!idle_.empty() && lease.dirs.empty()) {
      auto dirs = std::move(idle_.back());
      idle_.pop_back();
      if (std::all_of(dirs.begin(), dirs.end(), [](const fs::path& d) { return ::access(d.c_str(), F_OK) == 0; })) {
        lease.dirs = std::move(dirs);
      }
    }
  }
  if (lease.dirs.empty()) {
    auto dirs = create_group();
    if (!dirs) return error_of(dirs);
    lease.dirs = std::move(*dirs);
  }
  if (auto set = set_limits(kind_, lease, limits); !set) {
    remove_group(lease.dirs);
    return error_of(set);
  }
  for (const auto& dir : lease.dirs) {
    unique_fd procs(::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs) {
      const int err = errno;
      remove_group(lease.dirs);
      return fail(Errc::sandbox_setup, "open " + (dir / "cgroup.procs").string(), err);
    }
    lease.procs.push_back(std::move(procs));
  }
  return lease;
}

CgroupUsage CgroupPool::read_usage(const CgroupLease& lease) const {
  const auto& memory_dir = lease.dirs.front();
  const auto& pids_dir = lease.dirs.back();
  CgroupUsage usage;
  if (kind_ == Kind::v1) {
    usage.peak_memory_bytes = read_number(memory_dir / "memory.max_usage_in_bytes");
    usage.oom_killed = read_counter(memory_dir / "memory.oom_control", "oom_kill") > lease.oom_kills_before;
  } else {
    usage.peak_memory_bytes = read_number(memory_dir / "memory.peak");
    usage.oom_killed = read_counter(memory_dir / "memory.events", "oom_kill") > lease.oom_kills_before;
  }
  usage.pids_limit_hit = read_counter(pids_dir / "pids.events", "max") > lease.pids_max_before;
  return usage;
}

bool CgroupPool::kill_members(const CgroupLease& lease) {
  for (const auto& dir : lease.dirs) (void)write_file(dir / "cgroup.kill", "1");  // v2, Linux >= 5.14
  for (int round = 0; round < 1000; ++round) {
    bool empty = true;
    for (const auto& dir : lease.dirs) {
      std::istringstream pids(read_file(dir / "cgroup.procs"));
      for (long pid = 0; pids >> pid;) {
        empty = false;
        if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
    if (empty) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

void CgroupPool::recycle(CgroupLease lease) {
  lease.procs.clear();
  const auto& memory_dir = lease.dirs.front();
  // v1 lets us reset the peak, so an empty group can serve the next execution; v2's memory.peak
  // is not resettable on every kernel, so v2 groups are removed.
  bool reusable = kind_ == Kind::v1;
  for (const auto& dir : lease.dirs) {
    for (int attempt = 0; attempt < 1000 && !read_file(dir / "cgroup.procs").empty(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    reusable = reusable && read_file(dir / "cgroup.procs").empty();
  }
  if (reusable && write_file(memory_dir / "memory.max_usage_in_bytes", "0")) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(lease.dirs));
  } else {
    remove_group(lease.dirs);
  }
}

}  // namespace pagi_exec::sys
