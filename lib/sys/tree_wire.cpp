// SPDX-License-Identifier: Apache-2.0
// The spawn helper's wire format: little-endian 64-bit numbers and length-prefixed strings, in
// one fixed order per message; descriptors are named by their index among the SCM_RIGHTS ones.
// Both ends are the same binary, so the format needs no versioning beyond a tag that catches a
// message of another kind.
#include "sys/tree_wire.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "sys/c_array.hpp"

namespace pagi_exec::sys {
namespace {

constexpr std::uint64_t run_tag = 0x70616769'72756e31;     // "pagirun1"
constexpr std::uint64_t shared_tag = 0x70616769'73687231;  // "pagishr1"
// A root plan's /etc/passwd and group grow with the uid pool; far below this in practice.
constexpr std::size_t max_shared_bytes = 64 * 1024 * 1024;

class Writer {
 public:
  void number(std::uint64_t value) { bytes_.append(reinterpret_cast<const char*>(&value), sizeof value); }
  void signed_number(std::int64_t value) { number(static_cast<std::uint64_t>(value)); }
  void text(std::string_view s) {
    number(s.size());
    bytes_.append(s);
  }
  void texts(const char* const* list) {
    std::uint64_t count = 0;
    while (list != nullptr && list[count] != nullptr) ++count;
    number(count);
    for (std::uint64_t i = 0; i < count; ++i) text(list[i]);
  }
  // A descriptor travels beside the bytes; the bytes hold its index (-1: none).
  void fd(int fd, std::vector<int>& fds) {
    if (fd < 0) {
      signed_number(-1);
      return;
    }
    signed_number(static_cast<std::int64_t>(fds.size()));
    fds.push_back(fd);
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  std::uint64_t number() {
    std::uint64_t value = 0;
    if (rest_.size() < sizeof value) {
      ok_ = false;
      return 0;
    }
    std::memcpy(&value, rest_.data(), sizeof value);
    rest_.remove_prefix(sizeof value);
    return value;
  }
  std::int64_t signed_number() { return static_cast<std::int64_t>(number()); }
  bool flag() { return number() != 0; }
  std::string text() {
    const std::uint64_t size = number();
    if (size > rest_.size()) {
      ok_ = false;
      return {};
    }
    std::string out(rest_.substr(0, size));
    rest_.remove_prefix(size);
    return out;
  }
  std::vector<std::string> texts() {
    const std::uint64_t count = number();
    std::vector<std::string> out;
    for (std::uint64_t i = 0; ok_ && i < count; ++i) out.push_back(text());
    return out;
  }
  // The descriptor the bytes name, -1 for none; a bad index spoils the message.
  int fd(const std::vector<unique_fd>& fds) {
    const std::int64_t index = signed_number();
    if (index < 0) return -1;
    if (static_cast<std::uint64_t>(index) >= fds.size()) {
      ok_ = false;
      return -1;
    }
    return fds[static_cast<std::size_t>(index)].get();
  }
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] bool at_end() const noexcept { return rest_.empty(); }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

void write_rlimits(Writer& out, const RlimitSet& limits) {
  for (const auto& entry : limits.entries) {
    out.signed_number(entry.resource);
    out.number(entry.value);
  }
}

RlimitSet read_rlimits(Reader& in) {
  RlimitSet limits;
  for (auto& entry : limits.entries) {
    entry.resource = static_cast<int>(in.signed_number());
    entry.value = in.number();
  }
  return limits;
}

std::uint32_t id_of(Reader& in) { return static_cast<std::uint32_t>(in.number()); }

}  // namespace

// Every field of ChildArgs and of NativeArgs but root, seccomp (in native_shared) and the argv
// areas (the helper's own); a field added there must be added here and in decode.
RunMessage encode_run(const ChildArgs& args, const NativeArgs* native, int maps_fd, int native_shared, int reply) {
  Writer out;
  RunMessage message;
  auto& fds = message.fds;
  out.number(run_tag);
  out.fd(reply, fds);
  out.texts(args.argv);
  out.texts(args.envp);
  out.text(args.cwd != nullptr ? args.cwd : "");
  for (const int fd : {args.stdout_fd, args.stderr_fd, args.report_fd, args.control_fd, args.fd3,
                       args.cgroup_procs[0], args.cgroup_procs[1]}) {
    out.fd(fd, fds);
  }
  out.signed_number(args.timeout_us);
  write_rlimits(out, *args.rlimits);
  out.number(args.drop ? 1 : 0);
  out.number(args.no_new_privs ? 1 : 0);
  out.number(args.uid);
  out.number(args.gid);
  out.number(native != nullptr ? 1 : 0);
  if (native != nullptr) {
    out.fd(native_shared, fds);
    out.fd(maps_fd, fds);
    for (const int fd : {native->template_fd, native->workspace_tree, native->netns_fd, native->cgroup_procs[0],
                         native->cgroup_procs[1]}) {
      out.fd(fd, fds);
    }
    out.text(native->workspace != nullptr ? native->workspace : "");
    out.number(native->workspace != nullptr ? 1 : 0);
    out.text(native->work_options != nullptr ? native->work_options : "");
    out.number(native->host_network ? 1 : 0);
    out.number(native->uid);
    out.number(native->gid);
    out.number(native->workspace_gid);
    out.number(native->user_namespace ? 1 : 0);
    out.number(native->memory_by_rlimit ? 1 : 0);
  }
  message.bytes = out.take();
  return message;
}

Result<std::unique_ptr<ReceivedRun>> ReceivedRun::decode(std::string_view bytes, std::vector<unique_fd> fds) {
  std::unique_ptr<ReceivedRun> run(new ReceivedRun());
  run->fds_ = std::move(fds);
  const auto& held = run->fds_;
  Reader in(bytes);
  if (in.number() != run_tag) return fail(Errc::internal, "spawn helper: not a run message");
  run->reply = in.fd(held);
  run->argv_ = in.texts();
  run->env_ = in.texts();
  run->cwd_ = in.text();
  ChildArgs& args = run->args;
  for (int* fd : {&args.stdout_fd, &args.stderr_fd, &args.report_fd, &args.control_fd, &args.fd3,
                  &args.cgroup_procs[0], &args.cgroup_procs[1]}) {
    *fd = in.fd(held);
  }
  args.timeout_us = in.signed_number();
  run->rlimits_ = read_rlimits(in);
  args.drop = in.flag();
  args.no_new_privs = in.flag();
  args.uid = id_of(in);
  args.gid = id_of(in);
  if (in.flag()) {
    NativeArgs native;
    run->native_shared = in.fd(held);
    run->maps_fd = in.fd(held);
    for (int* fd : {&native.template_fd, &native.workspace_tree, &native.netns_fd, &native.cgroup_procs[0],
                    &native.cgroup_procs[1]}) {
      *fd = in.fd(held);
    }
    run->workspace_ = in.text();
    const bool has_workspace = in.flag();
    run->work_options_ = in.text();
    native.workspace = has_workspace ? run->workspace_.c_str() : nullptr;
    native.work_options = run->work_options_.c_str();
    native.host_network = in.flag();
    native.uid = id_of(in);
    native.gid = id_of(in);
    native.workspace_gid = id_of(in);
    native.user_namespace = in.flag();
    native.memory_by_rlimit = in.flag();
    run->native = native;
  }
  if (!in.ok() || !in.at_end() || run->argv_.empty() ||
      (run->native && run->native_shared < 0)) {
    return fail(Errc::internal, "spawn helper: a malformed run message");
  }
  run->argv_ptrs_ = c_array(run->argv_);
  run->env_ptrs_ = c_array(run->env_);
  args.argv = run->argv_ptrs_.data();
  args.envp = run->env_ptrs_.data();
  args.cwd = run->cwd_.c_str();
  args.rlimits = &run->rlimits_;
  return run;
}

// Every field of RootPlan (a field added there must be added here and in read_native_shared;
// spawn_helper_test compares them all after the trip).
Result<unique_fd> seal_native_shared(const RootPlan& root, const SeccompProgram& seccomp) {
  Writer out;
  out.number(shared_tag);
  for (const std::string* field : {&root.root, &root.root_options, &root.tmp_options, &root.work_options, &root.proc,
                                   &root.dev, &root.tmp, &root.work, &root.workspace}) {
    out.text(*field);
  }
  out.number(root.dirs.size());
  for (const auto& dir : root.dirs) out.text(dir);
  out.number(root.ro_binds.size());
  for (const auto& bind : root.ro_binds) {
    out.text(bind.source);
    out.text(bind.target);
    out.number(bind.extra_flags);
  }
  out.number(root.links.size());
  for (const auto& link : root.links) {
    out.text(link.target);
    out.text(link.path);
  }
  out.number(root.files.size());
  for (const auto& file : root.files) {
    out.text(file.path);
    out.text(file.content);
  }
  const sock_fprog prog = seccomp.fprog();
  out.text(std::string_view(reinterpret_cast<const char*>(prog.filter), prog.len * sizeof(sock_filter)));
  const std::string bytes = out.take();

  unique_fd fd(::memfd_create("pagi-exec-native-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return fail(Errc::sandbox_setup, "memfd_create for the native plan", errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errc::sandbox_setup, "write the native plan's memfd", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return fail(Errc::sandbox_setup, "seal the native plan's memfd", errno);
  }
  return fd;
}

Result<NativeShared> read_native_shared(int fd) {
  constexpr int needed = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & needed) != needed) return fail(Errc::internal, "spawn helper: the native plan is not sealed");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(Errc::internal, "spawn helper: fstat the native plan", errno);
  if (st.st_size <= 0 || static_cast<std::uint64_t>(st.st_size) > max_shared_bytes) {
    return fail(Errc::internal, "spawn helper: the native plan's size");
  }
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {  // pread: the server shares this descriptor's offset
    const auto n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errc::internal, "spawn helper: read the native plan", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  Reader in(bytes);
  if (in.number() != shared_tag) return fail(Errc::internal, "spawn helper: not a native plan");
  RootPlan root;
  for (std::string* field : {&root.root, &root.root_options, &root.tmp_options, &root.work_options, &root.proc,
                             &root.dev, &root.tmp, &root.work, &root.workspace}) {
    *field = in.text();
  }
  for (std::uint64_t n = in.number(); in.ok() && n > 0; --n) root.dirs.push_back(in.text());
  for (std::uint64_t n = in.number(); in.ok() && n > 0; --n) {
    RootPlan::Bind bind;
    bind.source = in.text();
    bind.target = in.text();
    bind.extra_flags = in.number();
    root.ro_binds.push_back(std::move(bind));
  }
  for (std::uint64_t n = in.number(); in.ok() && n > 0; --n) {
    RootPlan::Link link;
    link.target = in.text();
    link.path = in.text();
    root.links.push_back(std::move(link));
  }
  for (std::uint64_t n = in.number(); in.ok() && n > 0; --n) {
    RootPlan::File file;
    file.path = in.text();
    file.content = in.text();
    root.files.push_back(std::move(file));
  }
  const std::string code = in.text();
  if (!in.ok() || !in.at_end() || code.size() % sizeof(sock_filter) != 0) {
    return fail(Errc::internal, "spawn helper: a malformed native plan");
  }
  std::vector<sock_filter> instructions(code.size() / sizeof(sock_filter));
  std::memcpy(instructions.data(), code.data(), code.size());
  return SeccompProgram::from_instructions(std::move(instructions)).map([&](SeccompProgram seccomp) {
    return NativeShared{std::move(root), std::move(seccomp)};
  });
}

}  // namespace pagi_exec::sys
