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
#include <optional>
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

// The control files an execution reads or joins, per kind (v1 / v2).
struct ControlNames {
  const char* memory_events;  // the oom_kill counter
  const char* memory_peak;    // peak memory use
};
constexpr ControlNames v1_names{"memory.oom_control", "memory.max_usage_in_bytes"};
constexpr ControlNames v2_names{"memory.events", "memory.peak"};

struct CgroupFiles {
  std::vector<fs::path> dirs;          // v1: memory, pids; v2: one
  std::vector<unique_fd> procs;        // cgroup.procs, write-only: the child joins through it
  std::vector<unique_fd> procs_list;   // cgroup.procs, read: is the group empty
  unique_fd memory_events, memory_peak, pids_events;
  std::optional<CgroupLimits> limits;  // what was last written, so a reused group with the same
                                       // limits costs no write
};

namespace {

unique_fd open_control(const fs::path& dir, const char* name, int flags) {
  return unique_fd(::open((dir / name).c_str(), flags | O_CLOEXEC));
}

// A control file's content, read again from its start (a cgroup file regenerates it on a read at
// offset 0); nullopt when it cannot be read (the group was removed under us: ENODEV).
std::optional<std::string> read_again(const unique_fd& fd) {
  if (!fd) return std::string();
  char buffer[512];
  const ssize_t n = ::pread(fd.get(), buffer, sizeof buffer, 0);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

// The number after `key` in a "key value" per line text (memory.oom_control, pids.events).
std::uint64_t counter_in(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string name;
  std::uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

std::uint64_t number_in(const std::string& text) {
  std::uint64_t value = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc()) return 0;
  return value;
}

// No process left in it (its cgroup.procs lists none).
bool group_empty(const CgroupFiles& files) {
  return std::all_of(files.procs_list.begin(), files.procs_list.end(), [](const unique_fd& fd) {
    char c = 0;
    return ::pread(fd.get(), &c, 1, 0) == 0;
  });
}

// Writes `limits` into the group unless they are already there.
Result<void> write_limits(CgroupPool::Kind kind, CgroupFiles& files, const CgroupLimits& limits) {
  if (files.limits == limits) return {};
  files.limits.reset();  // unknown until every write below worked
  const auto& memory_dir = files.dirs.front();
  const auto& pids_dir = files.dirs.back();
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
  } else {
    set = write_file(memory_dir / "memory.max", mem);
    if (set) (void)write_file(memory_dir / "memory.swap.max", "0");
  }
  if (set) set = write_file(pids_dir / "pids.max", pids);
  if (set) files.limits = limits;
  return set;
}

// `limits` in the lease's group, and the baselines of its counters (they cannot be reset).
Result<void> set_limits(CgroupPool::Kind kind, CgroupLease& lease, const CgroupLimits& limits) {
  auto& files = *lease.files;
  if (auto set = write_limits(kind, files, limits); !set) return set;
  const auto events = read_again(files.memory_events);
  const auto pids_events = read_again(files.pids_events);
  if (!events || !pids_events) return fail(Errc::sandbox_setup, "read the counters of " + files.dirs.front().string(), errno);
  lease.oom_kills_before = counter_in(*events, "oom_kill");
  lease.pids_max_before = counter_in(*pids_events, "max");
  return {};
}

// A pool's parent someone removed under us (an operator, a stale-group sweep that mistook our
// pid): made again, so runs go on getting groups instead of failing until a restart.
bool remake_parent(CgroupPool::Kind kind, const fs::path& parent) {
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return false;
  return kind == CgroupPool::Kind::v1 || write_file(parent / "cgroup.subtree_control", "+memory +pids").has_value();
}

}  // namespace

CgroupPool::~CgroupPool() {
  for (const auto& files : idle_) remove_group(files->dirs);
  for (const auto& parent : parents_) ::rmdir(parent.c_str());
}

Result<std::shared_ptr<CgroupFiles>> CgroupPool::create_group() {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
  }
  auto files = std::make_shared<CgroupFiles>();
  const auto failed = [&](const std::string& what, int err) {
    const auto dirs = files->dirs;
    files.reset();  // its files close before the folders go
    remove_group(dirs);
    return fail(Errc::sandbox_setup, what, err);
  };
  for (const auto& parent : parents_) {
    auto dir = parent / std::to_string(id);
    int made = ::mkdir(dir.c_str(), 0755);
    int err = errno;
    if (made != 0 && err == ENOENT && remake_parent(kind_, parent)) {
      made = ::mkdir(dir.c_str(), 0755);
      err = errno;
    }
    if (made != 0) return failed("mkdir " + dir.string(), err);
    files->dirs.push_back(dir);
    files->procs.push_back(open_control(dir, "cgroup.procs", O_WRONLY));
    files->procs_list.push_back(open_control(dir, "cgroup.procs", O_RDONLY));
    if (!files->procs.back() || !files->procs_list.back()) return failed("open " + (dir / "cgroup.procs").string(), errno);
  }
  const auto& names = kind_ == Kind::v1 ? v1_names : v2_names;
  const auto& memory_dir = files->dirs.front();
  files->memory_events = open_control(memory_dir, names.memory_events, O_RDONLY);
  files->memory_peak = open_control(memory_dir, names.memory_peak, kind_ == Kind::v1 ? O_RDWR : O_RDONLY);
  files->pids_events = open_control(files->dirs.back(), "pids.events", O_RDONLY);
  if (!files->memory_events || !files->pids_events) return failed("open the counters of " + memory_dir.string(), errno);
  return files;  // without memory.peak (Linux < 5.19, v2) the peak reads as 0
}

std::shared_ptr<CgroupFiles> CgroupPool::take_idle() {
  std::lock_guard lock(mutex_);
  if (idle_.empty()) return nullptr;
  auto files = std::move(idle_.back());
  idle_.pop_back();
  return files;
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

Result<CgroupLease> CgroupPool::acquire(const CgroupLimits& limits) {
  for (;;) {
    auto files = take_idle();
    const bool fresh = files == nullptr;
    if (fresh) {
      auto made = create_group();
      if (!made) return error_of(made);
      files = std::move(*made);
    }
    CgroupLease lease{.dirs = files->dirs, .procs = {}, .oom_kills_before = 0, .pids_max_before = 0, .files = files};
    for (const auto& fd : files->procs) lease.procs.push_back(fd.get());
    auto set = set_limits(kind_, lease, limits);
    if (set) return lease;
    const auto dirs = files->dirs;
    lease = {};
    files.reset();
    remove_group(dirs);
    // An idle group someone removed meanwhile (a stale-group sweep of another server sharing
    // the tree) is dropped, and the next one tried; a fresh one that fails is an error.
    if (fresh) return error_of(set);
  }
}

CgroupUsage CgroupPool::read_usage(const CgroupLease& lease) const {
  const auto& files = *lease.files;
  CgroupUsage usage;
  usage.peak_memory_bytes = number_in(read_again(files.memory_peak).value_or(""));
  usage.oom_killed = counter_in(read_again(files.memory_events).value_or(""), "oom_kill") > lease.oom_kills_before;
  usage.pids_limit_hit = counter_in(read_again(files.pids_events).value_or(""), "max") > lease.pids_max_before;
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
  auto files = std::move(lease.files);
  lease = {};
  // v1 lets us reset the peak, so an empty group can serve the next execution; v2's memory.peak
  // is not resettable on every kernel, so v2 groups are removed.
  for (int attempt = 0; attempt < 1000 && !group_empty(*files); ++attempt) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const bool reusable = kind_ == Kind::v1 && group_empty(*files) && files->memory_peak &&
                        ::pwrite(files->memory_peak.get(), "0", 1, 0) == 1;
  if (reusable) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(files));
    return;
  }
  const auto dirs = files->dirs;
  files.reset();
  remove_group(dirs);
}

}  // namespace pagi_exec::sys
