// SPDX-License-Identifier: Apache-2.0
// AuditLog: appends one JSON line per record with one write(2), syncs, rotates, reports its health.
//
// Crash safety rests on three kernel guarantees (see write(2), open(2) O_APPEND):
//  - data a write(2) has returned is in the page cache: it survives the writer's death (kill -9);
//    fdatasync(2) only adds survival of a power loss or an OS crash;
//  - with O_APPEND, each write lands at the end of the file as one piece (the seek and the write
//    are one atomic step), so concurrent writers never interleave inside a line;
//  - a write to a regular file is cut short only by a fatal signal, a full disk or a file-size
//    limit, so a kill lands between records or tears at most the last one.
// The descriptor is this file's only syscall user outside lib/sys/ (kept here, as asked in issue 5).
#include "pagi_exec/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include "audit_json.hpp"
#include "sha256.hpp"
#include "sys/random.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec {

struct detail::AuditLogState {
  AuditOptions options;
  mutable std::mutex mutex;  // guards everything below
  // Shared so the sync thread can fdatasync outside the lock while a rotation swaps files.
  std::shared_ptr<sys::unique_fd> file;  // null: not open; the next record opens the path
  dev_t dev = 0;
  ino_t ino = 0;
  bool regular = false;          // rotation by size only applies to regular files
  std::uint64_t size = 0;        // bytes in the open file (fstat at open + what we wrote)
  bool pending_newline = false;  // the file ends inside a line: start the next record on a new one
  bool dirty = false;            // written but not yet synced (Sync::interval)
  std::string last_hash;         // the chain: SHA-256 of the last record written (this file or the one before)
  AuditLog::Status status;
  std::condition_variable_any wake;
  std::jthread syncer;  // Sync::interval only
};

namespace {

using State = detail::AuditLogState;

// What to do about an errno, for people reading the error message.
const char* hint(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT: return "free space on its file system";
    case ENOENT:
    case ENOTDIR: return "create its folder or choose another path";
    case EACCES:
    case EPERM: return "give this process write access to the file and its folder";
    case EROFS: return "choose a path on a writable file system";
    case EISDIR: return "the path is a folder: name a file";
    case EFBIG: return "the file is too large: rotate it (rotate_bytes or logrotate)";
    case EIO: return "check the disk";
    default: return "check the path and its file system";
  }
}

Error io_error(int err, const std::string& what, const std::filesystem::path& path) {
  return Error::from_errno(Errc::io, err, "audit log " + path.string() + ": " + what + " failed (" + hint(err) + ")");
}

// Whether the file ends inside a line (a torn record from a crash): then the next record must start
// on a new line, or it would be glued to the torn one and lost with it. When the last byte cannot be
// read, assume so: a blank line costs nothing (readers skip it), a glued record costs a record.
bool ends_inside_line(const std::filesystem::path& path, std::uint64_t size) {
  if (size == 0) return false;
  const sys::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char last = 0;
  if (!fd || ::pread(fd.get(), &last, 1, static_cast<off_t>(size - 1)) != 1) return true;
  return last != '\n';
}

// How far back from the end the last record is first looked for; records are bounded (each
// string to max_arg_bytes, the args together to max_args_total_bytes), by default far below it.
constexpr std::uint64_t first_tail_bytes = 1 << 20;
// Beyond this, a tail without a record is not an audit log's (a record this size is not made).
constexpr std::uint64_t last_tail_bytes = 256 << 20;

// The hash of the last whole record in `tail`, the last bytes of a file (its start cut anywhere).
std::optional<std::string> last_record_in(const std::string& tail) {
  // From the end: skip a final line without '\n' (torn by a crash), then take the first line that
  // is a record. A line cut by the window's start never parses as one.
  auto end = tail.rfind('\n');
  while (end != std::string::npos && end > 0) {
    const auto start = tail.rfind('\n', end - 1);
    const auto begin = start == std::string::npos ? 0 : start + 1;
    const std::string_view line(tail.data() + begin, end - begin);
    if (!line.empty() && detail::audit_entry_from_line(std::string(line))) return detail::sha256_hex(line);
    if (start == std::string::npos) break;
    end = start;
  }
  return std::nullopt;
}

// The hash of the last whole record (a '\n'-terminated line that parses) in the file at `path`,
// or nullopt when it holds none (empty, missing, unreadable, only torn or foreign lines).
std::optional<std::string> last_record_hash(const std::filesystem::path& path) {
  const sys::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return std::nullopt;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // A window of the file's end, grown until it holds a whole record or is the whole file.
  for (auto window = first_tail_bytes;; window *= 4) {
    const auto from = size > window ? size - window : 0;
    std::string tail(size - from, '\0');
    std::size_t got = 0;
    while (got < tail.size()) {
      const ssize_t n = ::pread(fd.get(), tail.data() + got, tail.size() - got, static_cast<off_t>(from + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      got += static_cast<std::size_t>(n);
    }
    if (auto found = last_record_in(tail)) return found;
    if (from == 0 || window >= last_tail_bytes) return std::nullopt;
  }
}

// Where the chain goes on in a file just opened: after its own last record; in an empty file,
// after the last record this log wrote (a rotation, a reopen), else after the last record of
// path.1 (rotated while the server was down), else it starts (64 zeros).
void find_chain_link(State& s) {
  if (auto last = last_record_hash(s.options.path)) {
    s.last_hash = std::move(*last);
    return;
  }
  if (!s.last_hash.empty()) return;
  auto rotated = s.options.path;
  rotated += ".1";
  s.last_hash = last_record_hash(rotated).value_or(detail::chain_origin);
}

// Opens (or creates) the path for appending and makes it the current file. On failure the
// current file, if any, is left as it was.
Result<void> open_file(State& s) {
  const auto& path = s.options.path;
  sys::unique_fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!fd) return tl::unexpected(io_error(errno, "open for appending", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(io_error(errno, "fstat", path));
  s.file = std::make_shared<sys::unique_fd>(std::move(fd));
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.regular = S_ISREG(st.st_mode);
  s.size = s.regular ? static_cast<std::uint64_t>(st.st_size) : 0;
  s.pending_newline = s.regular && ends_inside_line(path, s.size);
  find_chain_link(s);
  return {};
}

Result<void> sync_fd(const sys::unique_fd& fd, const std::filesystem::path& path) {
  if (::fdatasync(fd.get()) == 0) return {};
  const int err = errno;
  // EINVAL/EROFS: a pipe or device that has nothing to sync (fdatasync(2)).
  if (err == EINVAL || err == EROFS) return {};
  return tl::unexpected(io_error(err, "fdatasync", path));
}

// Syncs the current file if it holds unsynced records (before it is closed or replaced).
Result<void> settle(State& s) {
  if (!s.dirty || !s.file) return {};
  s.dirty = false;
  return sync_fd(*s.file, s.options.path);
}

// Whether the path still names the open file. Something else may have removed or renamed it
// (logrotate without a SIGHUP, an operator); records written then would go to an unlinked inode.
bool path_is_ours(const State& s) {
  struct stat st {};
  return ::stat(s.options.path.c_str(), &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino;
}

Result<void> ensure_open(State& s) {
  if (s.file && path_is_ours(s)) return {};
  (void)settle(s);  // best effort: the old file is gone from the path anyway
  return open_file(s);
}

// path -> path.1 (rename(2) replaces an older .1 atomically), then a new file. If the new file
// cannot be opened, the record still goes to the renamed one and the next record reports the error.
Result<void> rotate(State& s) {
  const auto& path = s.options.path;
  if (auto synced = settle(s); !synced) return synced;
  auto rotated = path;
  rotated += ".1";
  if (::rename(path.c_str(), rotated.c_str()) != 0) {
    return tl::unexpected(io_error(errno, "rotate (rename to " + rotated.string() + ")", path));
  }
  return open_file(s);
}

void rotate_if_due(State& s, std::size_t next_bytes) {
  const auto limit = s.options.rotate_bytes;
  if (limit == 0 || !s.regular || s.size == 0 || s.size + next_bytes <= limit) return;
  if (auto rotated = rotate(s); !rotated) s.status.last_error = rotated.error().message();
}

// The whole line with one write(2) when possible. A short write (full disk, file-size limit) is
// continued; if that fails the file ends inside a line, which the next record steps over.
Result<void> write_all(State& s, std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(s.file->get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      if (done > 0) s.pending_newline = true;
      return tl::unexpected(io_error(err, "write", s.options.path));
    }
    done += static_cast<std::size_t>(n);
    s.size += static_cast<std::uint64_t>(n);
  }
  s.pending_newline = false;
  return {};
}

// The chain's link, the record's last field: `line` is one JSON object and '\n' from audit_line.
void link(std::string& line, const std::string& prev) {
  line.insert(line.size() - 2, ",\"prev\":\"" + prev + "\"");
}

Result<void> write_record(State& s, std::string& line) {
  if (auto opened = ensure_open(s); !opened) return opened;
  link(line, s.last_hash);  // a rotation keeps the chain: the link is the same either way
  rotate_if_due(s, line.size());
  const auto hash = detail::sha256_hex(std::string_view(line).substr(0, line.size() - 1));
  if (s.pending_newline) line.insert(line.begin(), '\n');
  if (auto written = write_all(s, line); !written) return written;
  s.last_hash = hash;  // a record that was not written whole is not in the chain
  if (s.options.sync == AuditOptions::Sync::every) return sync_fd(*s.file, s.options.path);
  s.dirty = true;
  s.wake.notify_one();
  return {};
}

// Sync::interval: the first record after a quiet spell wakes this thread, which waits out the
// interval (batching every record written meanwhile) and syncs once, outside the lock.
void sync_loop(State& s, std::stop_token stop) {
  std::unique_lock lock(s.mutex);
  while (s.wake.wait(lock, stop, [&] { return s.dirty; })) {
    s.wake.wait_for(lock, stop, s.options.sync_interval, [] { return false; });
    if (stop.stop_requested()) break;  // the destructor syncs
    auto file = s.file;
    s.dirty = false;
    lock.unlock();
    auto synced = file ? sync_fd(*file, s.options.path) : Result<void>{};
    lock.lock();
    if (!synced) {
      s.status.healthy = false;
      s.status.last_error = synced.error().message();
    }
  }
}

void note(State& s, const Result<void>& done) {
  if (done) {
    ++s.status.records_written;
    s.status.healthy = true;
  } else {
    ++s.status.records_failed;
    s.status.healthy = false;
    s.status.last_error = done.error().message();
  }
}

}  // namespace

Result<std::shared_ptr<AuditLog>> AuditLog::open(AuditOptions options) {
  if (options.path.empty()) return fail(Errc::invalid_config, "audit log: the path is empty");
  if (options.max_arg_bytes == 0) return fail(Errc::invalid_config, "audit log: max_arg_bytes must be at least 1");
  if (options.sync == AuditOptions::Sync::interval && options.sync_interval.count() <= 0) {
    return fail(Errc::invalid_config, "audit log: sync_interval must be positive, not " +
                                          std::to_string(options.sync_interval.count()) + " ms");
  }
  auto state = std::make_unique<detail::AuditLogState>();
  state->options = std::move(options);
  if (auto opened = open_file(*state); !opened) return error_of(opened);
  if (state->options.sync == AuditOptions::Sync::interval) {
    state->syncer = std::jthread([s = state.get()](std::stop_token stop) { sync_loop(*s, std::move(stop)); });
  }
  return std::shared_ptr<AuditLog>(new AuditLog(std::move(state)));
}

AuditLog::AuditLog(std::unique_ptr<detail::AuditLogState> state) : state_(std::move(state)) {}

AuditLog::~AuditLog() {
  if (state_->syncer.joinable()) {
    state_->syncer.request_stop();
    state_->syncer.join();
  }
  std::lock_guard lock(state_->mutex);
  (void)settle(*state_);
}

Result<void> AuditLog::decided(const Request& request, const Outcome& outcome) {
  return append(detail::audit_line(detail::AuditRecordType::decision, request, outcome,
                                   std::chrono::system_clock::now(), state_->options));
}

Result<void> AuditLog::finished(const Request& request, const Outcome& outcome) {
  return append(detail::audit_line(detail::AuditRecordType::execution, request, outcome,
                                   std::chrono::system_clock::now(), state_->options));
}

Result<void> AuditLog::rejected(const Request& request, const AuthRejection& rejection) {
  return append(detail::auth_rejected_line(request, rejection, sys::new_uuid_v4(), std::chrono::system_clock::now(),
                                           state_->options));
}

Result<void> AuditLog::egress(const EgressConnection& connection) {
  return append(detail::egress_line(connection, std::chrono::system_clock::now(), state_->options));
}

Result<void> AuditSink::rejected(const Request& /*request*/, const AuthRejection& /*rejection*/) { return {}; }

Result<void> AuditSink::egress(const EgressConnection& /*connection*/) { return {}; }

Result<void> AuditLog::append(Result<std::string> line) {
  std::lock_guard lock(state_->mutex);
  auto done = line.and_then([&](std::string& text) { return write_record(*state_, text); });
  note(*state_, done);
  return done;
}

Result<void> AuditLog::reopen() {
  detail::AuditLogState& s = *state_;
  std::lock_guard lock(s.mutex);
  (void)settle(s);
  auto opened = open_file(s);
  s.status.healthy = opened.has_value();
  if (!opened) s.status.last_error = opened.error().message();
  return opened;
}

Result<void> AuditLog::sync() {
  detail::AuditLogState& s = *state_;
  std::lock_guard lock(s.mutex);
  s.dirty = false;
  auto synced = s.file ? sync_fd(*s.file, s.options.path) : Result<void>{};
  if (!synced) {
    s.status.healthy = false;
    s.status.last_error = synced.error().message();
  }
  return synced;
}

AuditLog::Status AuditLog::status() const {
  std::lock_guard lock(state_->mutex);
  return state_->status;
}

bool AuditLog::required() const noexcept { return state_->options.required; }

const AuditOptions& AuditLog::options() const noexcept { return state_->options; }

}  // namespace pagi_exec
