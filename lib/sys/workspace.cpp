// SPDX-License-Identifier: Apache-2.0
// Symlink-safe folder and file handling on the host side.
#include "sys/workspace.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {
namespace {

// openat2(2) confined to `dirfd`: no "..", no absolute path, no symlink anywhere, no mount
// crossing. Available since Linux 5.6.
int open_beneath(int dirfd, const char* path, std::uint64_t flags, std::uint64_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

// mkdir `name` in `dirfd` if missing, then open it as a directory without following a symlink.
Result<unique_fd> make_and_open_dir(int dirfd, const std::string& name, const std::string& shown,
                                    unsigned mode = 0700) {
  if (::mkdirat(dirfd, name.c_str(), mode) != 0 && errno != EEXIST) {
    return fail(Errc::sandbox_setup, "mkdir " + shown, errno);
  }
  unique_fd fd(open_beneath(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY));
  if (!fd) {
    const int err = errno;
    if (err == ELOOP || err == ENOTDIR || err == EXDEV) {
      return fail(Errc::invalid_request, shown + " is not a plain directory (a symlink?)", err);
    }
    return fail(Errc::sandbox_setup, "open " + shown, err);
  }
  return fd;
}

// Gives an open folder or file to `owner` (nothing without one), with `mode` for folders.
Result<void> give_to(int fd, const std::optional<Credentials>& owner, unsigned mode, const std::string& shown) {
  if (!owner) return {};
  if (::fchown(fd, owner->uid, owner->gid) != 0 || (mode != 0 && ::fchmod(fd, mode) != 0)) {
    return fail(Errc::sandbox_setup, "give " + shown + " to uid " + std::to_string(owner->uid), errno);
  }
  return {};
}

// Removes what the open folder `dir` holds; see remove_tree.
int remove_contents_at(int dir, int depth) {
  if (depth > 256) return ELOOP;
  const int listing = ::dup(dir);
  if (listing < 0) return errno;
  DIR* stream = ::fdopendir(listing);
  if (stream == nullptr) {
    const int err = errno;
    ::close(listing);
    return err;
  }
  int first_error = 0;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (::unlinkat(dir, entry->d_name, 0) == 0) continue;
    if (errno != EISDIR && errno != EPERM) {
      if (first_error == 0) first_error = errno;
      continue;
    }
    // A folder (or something that became one): descend without following a symlink.
    unique_fd sub(::openat(dir, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    int err = sub ? remove_contents_at(sub.get(), depth + 1) : errno;
    if (err == 0 && ::unlinkat(dir, entry->d_name, AT_REMOVEDIR) != 0) err = errno;
    if (err != 0 && first_error == 0) first_error = err;
  }
  ::closedir(stream);
  return first_error;
}

Result<unique_fd> open_root(const std::filesystem::path& root) {
  unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail(Errc::sandbox_setup, "open sandbox dir " + root.string(), errno);
  return fd;
}

}  // namespace

Result<void> ensure_directory(const std::filesystem::path& dir, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Errc::sandbox_setup, "create " + dir.string(), ec.value());
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return fail(Errc::sandbox_setup, "stat " + dir.string(), errno);
  if (!S_ISDIR(st.st_mode)) return fail(Errc::sandbox_setup, dir.string() + " is not a directory");
  if ((st.st_mode & 07777) != mode && ::chmod(dir.c_str(), mode) != 0) {
    return fail(Errc::sandbox_setup, "chmod " + dir.string(), errno);
  }
  return {};
}

Result<void> check_reachable(const std::filesystem::path& dir, const Credentials& who) {
  std::filesystem::path at;
  for (const auto& part : dir) {
    at /= part;
    struct stat st{};
    if (::stat(at.c_str(), &st) != 0) return fail(Errc::sandbox_setup, "stat " + at.string(), errno);
    const bool reachable = st.st_uid == who.uid   ? (st.st_mode & S_IXUSR) != 0
                           : st.st_gid == who.gid ? (st.st_mode & S_IXGRP) != 0
                                                  : (st.st_mode & S_IXOTH) != 0;
    if (!reachable) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return fail(Errc::sandbox_setup, "commands run as uid " + std::to_string(who.uid) + ", which cannot reach " +
                                           dir.string() + ": " + at.string() + " is mode " + mode +
                                           " (give it search permission, e.g. chmod o+x, or choose another folder)");
    }
  }
  return {};
}

Result<std::filesystem::path> make_execution_dir(const std::filesystem::path& root, const std::string& twin,
                                                 const std::string& execution_id, const std::optional<Credentials>& owner) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  auto twin_fd = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!twin_fd) return tl::unexpected(twin_fd.error());
  if (auto given = give_to(twin_fd->get(), owner, 0700, (root / twin).string()); !given) return tl::unexpected(given.error());
  const auto dir = root / twin / execution_id;
  if (::mkdirat(twin_fd->get(), execution_id.c_str(), 0700) != 0) {  // a fresh folder, never one found
    return fail(Errc::sandbox_setup, "mkdir " + dir.string(), errno);
  }
  auto dir_fd = make_and_open_dir(twin_fd->get(), execution_id, dir.string());
  if (!dir_fd) return tl::unexpected(dir_fd.error());
  if (auto given = give_to(dir_fd->get(), owner, 0700, dir.string()); !given) return tl::unexpected(given.error());
  return dir;
}

Result<std::filesystem::path> make_twin_dir(const std::filesystem::path& root, const std::string& twin) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  auto twin_fd = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!twin_fd) return tl::unexpected(twin_fd.error());
  return root / twin;
}

Result<std::filesystem::path> prepare_native_workspace(const std::filesystem::path& root, const std::string& twin,
                                                       std::uint32_t gid) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  const auto dir = root / twin;
  auto twin_fd = make_and_open_dir(root_fd->get(), twin, dir.string());
  if (!twin_fd) return tl::unexpected(twin_fd.error());
  // The sandbox's group may read (not write) it: it is mounted read-only at /workspace.
  if (::fchown(twin_fd->get(), static_cast<uid_t>(-1), gid) != 0 || ::fchmod(twin_fd->get(), 0750) != 0) {
    return fail(Errc::sandbox_setup, "give the sandbox group access to " + dir.string(), errno);
  }
  return dir;
}

Result<void> remove_tree(const std::filesystem::path& dir) {
  // The execution's own processes are dead by now, but other commands of the same uid (other
  // runs) may still be, so no step goes through a path that could change under us.
  unique_fd parent(::open(dir.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent) return fail(Errc::io, "open " + dir.parent_path().string(), errno);
  const auto name = dir.filename().string();
  unique_fd top(::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top) {
    if (errno == ENOENT) return {};
    if (errno == ENOTDIR || errno == ELOOP) {  // a symlink or a file: remove just that
      if (::unlinkat(parent.get(), name.c_str(), 0) != 0) return fail(Errc::io, "remove " + dir.string(), errno);
      return {};
    }
    return fail(Errc::io, "open " + dir.string(), errno);
  }
  if (const int err = remove_contents_at(top.get(), 0); err != 0) return fail(Errc::io, "remove " + dir.string(), err);
  if (::unlinkat(parent.get(), name.c_str(), AT_REMOVEDIR) != 0) return fail(Errc::io, "remove " + dir.string(), errno);
  return {};
}

Result<std::uint64_t> write_file_beneath(const std::filesystem::path& root, const std::string& twin,
                                         std::string_view relative, std::string_view content,
                                         const std::optional<Credentials>& owner) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  auto dir = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!dir) return tl::unexpected(dir.error());
  if (auto given = give_to(dir->get(), owner, 0700, twin); !given) return tl::unexpected(given.error());

  std::string shown = twin;
  std::string_view rest = relative;
  for (auto slash = rest.find('/'); slash != std::string_view::npos; slash = rest.find('/')) {
    const std::string part(rest.substr(0, slash));
    shown += "/" + part;
    auto next = make_and_open_dir(dir->get(), part, shown, 0755);  // inside the twin's 0700/0750 folder
    if (!next) return tl::unexpected(next.error());
    if (auto given = give_to(next->get(), owner, 0755, shown); !given) return tl::unexpected(given.error());
    *dir = std::move(*next);
    rest.remove_prefix(slash + 1);
  }
  const std::string name(rest);
  unique_fd file(open_beneath(dir->get(), name.c_str(), O_WRONLY | O_CREAT, 0644));
  if (!file) {
    const int err = errno;
    if (err == ELOOP || err == EISDIR || err == EXDEV) {
      return fail(Errc::invalid_request, "cannot write '" + std::string(relative) +
                                             "': it is a symlink or a directory", err);
    }
    return fail(Errc::io, "open " + std::string(relative), err);
  }
  // Truncate only once we know it is the twin's own file: an unprivileged command may have
  // planted a hard link to a file outside (fs.protected_hardlinks limits which).
  struct stat st{};
  if (::fstat(file.get(), &st) != 0) return fail(Errc::io, "stat " + std::string(relative), errno);
  if (st.st_nlink > 1) {
    return fail(Errc::invalid_request, "cannot write '" + std::string(relative) + "': it has other hard links");
  }
  if (::ftruncate(file.get(), 0) != 0) return fail(Errc::io, "truncate " + std::string(relative), errno);
  if (auto given = give_to(file.get(), owner, 0, std::string(relative)); !given) return tl::unexpected(given.error());
  std::uint64_t written = 0;
  while (written < content.size()) {
    const auto n = ::write(file.get(), content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::io, "write " + std::string(relative), errno);
    }
    written += static_cast<std::uint64_t>(n);
  }
  return written;
}

int executable_error(const std::filesystem::path& path) {
  return ::access(path.c_str(), X_OK) == 0 ? 0 : errno;
}

ProgramLookup find_program(std::string_view name, std::string_view path_dirs) {
  ProgramLookup lookup;
  while (true) {
    const auto colon = path_dirs.find(':');
    const auto dir = path_dirs.substr(0, colon);
    if (!dir.empty()) {
      std::string candidate = std::string(dir) + "/" + std::string(name);
      struct stat st{};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        if (::access(candidate.c_str(), X_OK) == 0) return {ProgramLookup::Found::executable, candidate};
        if (lookup.found == ProgramLookup::Found::missing) lookup = {ProgramLookup::Found::not_executable, candidate};
      }
    }
    if (colon == std::string_view::npos) break;
    path_dirs.remove_prefix(colon + 1);
  }
  return lookup;
}

}  // namespace pagi_exec::sys
