// SPDX-License-Identifier: Apache-2.0
// Symlink-safe folder and file handling on the host side.
#include "sys/workspace.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

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

Result<std::filesystem::path> make_execution_dir(const std::filesystem::path& root, const std::string& twin,
                                                 const std::string& execution_id) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  auto twin_fd = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!twin_fd) return tl::unexpected(twin_fd.error());
  const auto dir = root / twin / execution_id;
  if (::mkdirat(twin_fd->get(), execution_id.c_str(), 0700) != 0) {
    return fail(Errc::sandbox_setup, "mkdir " + dir.string(), errno);
  }
  return dir;
}

Result<std::filesystem::path> prepare_native_workspace(const std::filesystem::path& root, const std::string& twin,
                                                       std::uint32_t reader_gid) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  const auto dir = root / twin;
  auto twin_fd = make_and_open_dir(root_fd->get(), twin, dir.string());
  if (!twin_fd) return tl::unexpected(twin_fd.error());
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
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || entry.is_symlink(ec) || !entry.is_directory(ec)) continue;
    (void)prepare_native_workspace(root, name, reader_gid);  // never through a symlink
  }
}

std::uint32_t native_workspace_group(const SandboxSpec& spec) noexcept {
  return ::geteuid() == 0 && spec.native_ids.count != 0 ? spec.native_ids.first : spec.sandbox_gid;
}

Result<void> remove_tree(const std::filesystem::path& dir) {
  // std::filesystem::remove_all removes symlinks themselves and never descends through them.
  // The execution's processes are all dead by now, so nothing races with the removal.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return fail(Errc::io, "remove " + dir.string(), ec.value());
  return {};
}

Result<std::uint64_t> write_file_beneath(const std::filesystem::path& root, const std::string& twin,
                                         std::string_view relative, std::string_view content) {
  auto root_fd = open_root(root);
  if (!root_fd) return tl::unexpected(root_fd.error());
  auto dir = make_and_open_dir(root_fd->get(), twin, (root / twin).string());
  if (!dir) return tl::unexpected(dir.error());

  std::string shown = twin;
  std::string_view rest = relative;
  for (auto slash = rest.find('/'); slash != std::string_view::npos; slash = rest.find('/')) {
    const std::string part(rest.substr(0, slash));
    shown += "/" + part;
    auto next = make_and_open_dir(dir->get(), part, shown, 0755);  // inside the twin's 0700/0750 folder
    if (!next) return tl::unexpected(next.error());
    *dir = std::move(*next);
    rest.remove_prefix(slash + 1);
  }
  const std::string name(rest);
  unique_fd file(open_beneath(dir->get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (!file) {
    const int err = errno;
    if (err == ELOOP || err == EISDIR || err == EXDEV) {
      return fail(Errc::invalid_request, "cannot write '" + std::string(relative) +
                                             "': it is a symlink or a directory", err);
    }
    return fail(Errc::io, "open " + std::string(relative), err);
  }
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
