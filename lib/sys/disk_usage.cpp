// SPDX-License-Identifier: Apache-2.0
// measure_tree: du(1) for one workspace, symlink-safe and descriptor-bounded.
#include "sys/disk_usage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {
namespace {

// Opens the folder `name` in `parent` without following a symlink; O_NONBLOCK so that a FIFO
// swapped in by a concurrent command cannot block the walk (O_DIRECTORY refuses it anyway).
int open_folder(int parent, const char* name) {
  return ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

class Walker {
 public:
  explicit Walker(dev_t device) : device_(device) {}

  // Counts the entries of the open folder `dir` and descends into its sub-folders.
  Result<void> walk(unique_fd dir, unsigned depth, const std::set<std::string>& skip, const std::string& shown) {
    if (depth > max_measured_depth) {
      return fail(Errc::io, shown + " nests folders deeper than " + std::to_string(max_measured_depth) + " levels");
    }
    // fdopendir takes the descriptor it is given; keep our own for the fstatat/openat below.
    const int listing_fd = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
    if (listing_fd < 0) return fail(Errc::io, "dup " + shown, errno);
    DIR* listing = ::fdopendir(listing_fd);
    if (listing == nullptr) {
      const int err = errno;
      ::close(listing_fd);
      return fail(Errc::io, "list " + shown, err);
    }
    std::vector<std::string> folders;
    errno = 0;
    while (const dirent* entry = ::readdir(listing)) {
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      if (depth == 0 && skip.contains(name)) continue;
      struct stat st{};
      if (::fstatat(dir.get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we looked
        const int err = errno;
        ::closedir(listing);
        return fail(Errc::io, "stat " + shown + "/" + name, err);
      }
      count(st);
      if (S_ISDIR(st.st_mode) && st.st_dev == device_) folders.emplace_back(name);
      errno = 0;
    }
    const int read_error = errno;
    ::closedir(listing);
    if (read_error != 0) return fail(Errc::io, "list " + shown, read_error);
    for (const auto& name : folders) {
      unique_fd sub(open_folder(dir.get(), name.c_str()));
      if (!sub) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // changed while we looked
        return fail(Errc::io, "open " + shown + "/" + name, errno);
      }
      if (auto walked = walk(std::move(sub), depth + 1, skip, shown + "/" + name); !walked) return walked;
    }
    return {};
  }

  void count(const struct stat& st) {
    ++usage.entries;
    // A file with several names is counted once, as du(1) does.
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !seen_.emplace(st.st_dev, st.st_ino).second) return;
    usage.bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }

  TreeUsage usage;

 private:
  dev_t device_;
  std::set<std::pair<dev_t, ino_t>> seen_;
};

}  // namespace

Result<TreeUsage> measure_tree(const std::filesystem::path& dir, const std::set<std::string>& skip) {
  unique_fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!root) {
    if (errno == ENOENT) return TreeUsage{};
    return fail(Errc::io, "open " + dir.string(), errno);
  }
  struct stat st{};
  if (::fstat(root.get(), &st) != 0) return fail(Errc::io, "stat " + dir.string(), errno);
  Walker walker(st.st_dev);
  walker.count(st);
  return walker.walk(std::move(root), 0, skip, dir.filename().string()).map([&] { return walker.usage; });
}

}  // namespace pagi_exec::sys
