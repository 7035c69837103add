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
#include <vector>
#include <cstdio>

#include "sys/random.hpp"
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
  unique_fd fd(open_beneath(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NONBLOCK));
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

// make_and_open_dir, then give_to with mode 0700.
Result<unique_fd> make_owned_dir(int dirfd, const std::string& name, const std::string& shown,
                                 const std::optional<Credentials>& owner) {
  return make_and_open_dir(dirfd, name, shown).and_then([&](unique_fd fd) {
    return give_to(fd.get(), owner, 0700, shown).map([&] { return std::move(fd); });
  });
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
  const auto dir = root / twin / execution_id;
  return open_root(root)
      .and_then([&](const unique_fd& root_fd) {
        return make_owned_dir(root_fd.get(), twin, (root / twin).string(), owner);
      })
      .and_then([&](const unique_fd& twin_fd) -> Result<unique_fd> {
        if (::mkdirat(twin_fd.get(), execution_id.c_str(), 0700) != 0) {  // a fresh folder, never one found
          return fail(Errc::sandbox_setup, "mkdir " + dir.string(), errno);
        }
        return make_owned_dir(twin_fd.get(), execution_id, dir.string(), owner);
      })
      .map([&](const unique_fd&) { return dir; });
}

Result<std::filesystem::path> prepare_readonly_workspace(const std::filesystem::path& root, const std::string& twin,
                                                       std::uint32_t reader_gid) {
  const auto dir = root / twin;
  auto twin_fd = open_root(root).and_then(
      [&](const unique_fd& root_fd) { return make_and_open_dir(root_fd.get(), twin, dir.string()); });
  if (!twin_fd) return error_of(twin_fd);
  // The runs' group may read (not write) it: it is mounted read-only at /workspace. Checked
  // first, so the common case costs one fstat; a folder of an older version (0750 root:nogroup,
  // readable by every host process running as nobody) is corrected on its next run.
  const bool root_server = ::geteuid() == 0;
  const gid_t group = root_server ? reader_gid : ::getegid();
  const mode_t mode = root_server ? 0750 : 0700;
  struct stat st{};
  if (::fstat(twin_fd->get(), &st) == 0 && st.st_uid == ::geteuid() && st.st_gid == group && (st.st_mode & 07777) == mode) {
    return dir;
  }
  if ((root_server && ::fchown(twin_fd->get(), 0, group) != 0) || ::fchmod(twin_fd->get(), mode) != 0) {
    return fail(Errc::sandbox_setup, "give the sandbox group access to " + dir.string(), errno);
  }
  return dir;
}

void close_native_workspaces(const std::filesystem::path& root, std::uint32_t reader_gid) {
  std::error_code ec;
  for (std::filesystem::directory_iterator entry(root, ec), end; !ec && entry != end; entry.increment(ec)) {
    const auto name = entry->path().filename().string();
    std::error_code type_ec;
    if (name.empty() || name[0] == '.' || entry->is_symlink(type_ec) || !entry->is_directory(type_ec)) continue;
    (void)prepare_readonly_workspace(root, name, reader_gid);  // never through a symlink
  }
}

std::uint32_t native_workspace_group(const SandboxSpec& spec) noexcept {
  return ::geteuid() == 0 && spec.native_ids.count != 0 ? spec.native_ids.first : spec.sandbox_gid;
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

bool remove_if_empty(const std::filesystem::path& dir) noexcept {
  return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

const char* describe_file_type(unsigned mode) noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symlink";
    case S_IFIFO: return "a FIFO (named pipe)";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "not a regular file";
  }
}

namespace {

constexpr std::uint64_t block_bytes = 4096;  // the allocation unit the estimates assume

std::uint64_t allocated(const struct stat& st) { return static_cast<std::uint64_t>(st.st_blocks) * 512; }

std::vector<std::string> split_path(std::string_view relative) {
  std::vector<std::string> parts;
  for (auto slash = relative.find('/'); slash != std::string_view::npos; slash = relative.find('/')) {
    parts.emplace_back(relative.substr(0, slash));
    relative.remove_prefix(slash + 1);
  }
  parts.emplace_back(relative);
  return parts;
}

Result<std::uint64_t> write_all(int fd, std::string_view content, std::string_view shown) {
  std::uint64_t written = 0;
  while (written < content.size()) {
    const auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::io, "write " + std::string(shown), errno);
    }
    written += static_cast<std::uint64_t>(n);
  }
  return written;
}

// The replacement keeps the old file's permission bits (never set-id or sticky) and, when we may,
// its owner: a file a command owned stays writable by it.
void keep_owner_and_mode(int fd, const struct stat& old) {
  if (::fchown(fd, old.st_uid, old.st_gid) != 0) {
    // Not privileged: the file stays ours. Nothing else depends on it.
  }
  (void)::fchmod(fd, old.st_mode & 0777);
}

// "twin/a/b": the folder at parts[depth], for messages.
std::string folder_shown(const std::string& twin, const std::vector<std::string>& parts, std::size_t depth) {
  std::string path = twin;
  for (std::size_t i = 0; i <= depth; ++i) path += "/" + parts[i];
  return path;
}

// The twin's folder, created if needed (then it counts as one of the folders the write creates).
struct Workspace {
  unique_fd dir;
  bool created = false;
  std::uint64_t bytes = 0;  // its allocation when created, else 0
};

Result<Workspace> open_workspace(const std::filesystem::path& root, const std::string& twin,
                                 const std::optional<Credentials>& owner) {
  auto root_fd = open_root(root);
  if (!root_fd) return error_of(root_fd);
  Workspace workspace;
  struct stat st{};
  workspace.created = ::fstatat(root_fd->get(), twin.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0;
  auto dir = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!dir) return error_of(dir);
  if (auto given = give_to(dir->get(), owner, 0700, twin); !given) return error_of(given);
  if (workspace.created && ::fstat(dir->get(), &st) == 0) workspace.bytes = allocated(st);
  workspace.dir = std::move(*dir);
  return workspace;
}

// Where a write goes, found without creating anything.
struct Target {
  unique_fd dir;            // the deepest folder of the path that exists
  std::size_t depth = 0;    // parts[depth] up to the file name are folders still to make
  bool replacing = false;   // a regular file is there now: `old`
  struct stat old{};
};

Result<Target> locate(unique_fd dir, const std::vector<std::string>& parts, const std::string& twin,
                      const std::string& shown) {
  Target target;
  for (; target.depth + 1 < parts.size(); ++target.depth) {
    unique_fd next(open_beneath(dir.get(), parts[target.depth].c_str(), O_RDONLY | O_DIRECTORY | O_NONBLOCK));
    if (!next) {
      const int err = errno;
      if (err == ENOENT) break;
      if (err == ELOOP || err == ENOTDIR || err == EXDEV) {
        return fail(Errc::invalid_request,
                    folder_shown(twin, parts, target.depth) + " is not a plain directory (a symlink?)", err);
      }
      return fail(Errc::io, "open " + folder_shown(twin, parts, target.depth), err);
    }
    dir = std::move(next);
  }
  target.dir = std::move(dir);
  if (target.depth + 1 < parts.size()) return target;  // its folder is missing: so is the file
  // fstatat opens nothing: a FIFO cannot block us, a device's driver never runs.
  if (::fstatat(target.dir.get(), parts.back().c_str(), &target.old, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(target.old.st_mode)) {
      return fail(Errc::invalid_request, "cannot write '" + shown + "': it is " +
                                             describe_file_type(target.old.st_mode) +
                                             "; file_write writes regular files only");
    }
    target.replacing = true;
  } else if (errno != ENOENT) {
    return fail(Errc::io, "stat " + shown, errno);
  }
  return target;
}

// Makes the folders `target` lacks, moving target.dir down to the last; returns their allocation.
Result<std::uint64_t> make_folders(Target& target, const std::vector<std::string>& parts, const std::string& twin,
                                   const std::optional<Credentials>& owner) {
  std::uint64_t bytes = 0;
  for (; target.depth + 1 < parts.size(); ++target.depth) {
    const auto shown = folder_shown(twin, parts, target.depth);
    auto next = make_and_open_dir(target.dir.get(), parts[target.depth], shown, 0755);
    if (!next) return error_of(next);
    if (auto given = give_to(next->get(), owner, 0755, shown); !given) return error_of(given);
    struct stat st{};
    if (::fstat(next->get(), &st) == 0) bytes += allocated(st);
    target.dir = std::move(*next);
  }
  return bytes;
}

// Writes `content` to a fresh file beside the target, lets `admit` see its real size, and renames
// it over the target. rename(2) swaps the directory entry whatever it became meanwhile, never
// following it; only a folder there makes it fail.
Result<FileWrite> write_and_replace(const Target& target, const std::string& name, const std::string& shown,
                                    std::string_view content, const WriteAdmission& admit,
                                    const std::optional<Credentials>& owner, FileWrite change) {
  const int dir = target.dir.get();
  const std::string temp = ".pagi-file-write-" + new_uuid_v4();
  unique_fd file(open_beneath(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644));
  if (!file) return fail(Errc::io, "create a file beside " + shown, errno);
  const auto discarded = [&](Error error) {
    (void)::unlinkat(dir, temp.c_str(), 0);
    return error;
  };
  auto written = write_all(file.get(), content, shown);
  struct stat now{};
  if (written && ::fstat(file.get(), &now) != 0) written = fail(Errc::io, "stat " + shown, errno);
  if (!written) return tl::unexpected(discarded(written.error()));
  change.written = *written;
  change.new_bytes = allocated(now);
  change.estimated = false;
  if (auto admitted = admit(change); !admitted) return tl::unexpected(discarded(admitted.error()));
  if (target.replacing) keep_owner_and_mode(file.get(), target.old);
  if (auto given = give_to(file.get(), owner, 0, shown); !given) return tl::unexpected(discarded(given.error()));
  if (::renameat(dir, temp.c_str(), dir, name.c_str()) != 0) {
    const int err = errno;
    if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
      return tl::unexpected(discarded(Error::from_errno(
          Errc::invalid_request, err,
          "cannot write '" + shown + "': it is a directory; file_write writes regular files only")));
    }
    return tl::unexpected(discarded(Error::from_errno(Errc::io, err, "rename over " + shown)));
  }
  return change;
}

}  // namespace

Result<FileWrite> write_file_beneath(const std::filesystem::path& root, const std::string& twin,
                                     std::string_view relative, std::string_view content, const WriteAdmission& admit,
                                     const std::optional<Credentials>& owner) {
  auto workspace = open_workspace(root, twin, owner);
  if (!workspace) return error_of(workspace);
  const std::string shown(relative);
  const auto parts = split_path(relative);
  // 1. Look, creating nothing: the folders that exist, the ones to make, what the target is.
  auto target = locate(std::move(workspace->dir), parts, twin, shown);
  if (!target) return error_of(target);
  // 2. The estimate first: nothing is created for a write the quota refuses.
  const std::size_t folders_to_make = parts.size() - 1 - target->depth;
  FileWrite change{
      .written = 0,
      // Blocks of a file with other names stay allocated after the replacement.
      .replaced_bytes = target->replacing && target->old.st_nlink == 1 ? allocated(target->old) : 0,
      .new_bytes = (content.size() + block_bytes - 1) / block_bytes * block_bytes,
      .folder_bytes = workspace->bytes + folders_to_make * block_bytes,
      .entries_added = (workspace->created ? 1 : 0) + folders_to_make + (target->replacing ? 0 : 1),
      .estimated = true,
  };
  if (auto admitted = admit(change); !admitted) return error_of(admitted);
  // 3. The missing folders, then the content beside the target, renamed over it.
  auto made = make_folders(*target, parts, twin, owner);
  if (!made) return error_of(made);
  change.folder_bytes = workspace->bytes + *made;
  return write_and_replace(*target, parts.back(), shown, content, admit, owner, change);
}

int executable_error(const std::filesystem::path& path) {
  return ::access(path.c_str(), X_OK) == 0 ? 0 : errno;
}

int writable_folder_error(const std::filesystem::path& path) {
  return ::access(path.c_str(), W_OK | X_OK) == 0 ? 0 : errno;
}

}  // namespace pagi_exec::sys
