// SPDX-License-Identifier: Apache-2.0
// The native sandbox's seccomp deny-list: one table, compiled with libseccomp, installed by seccomp(2).
#include "sys/seccomp.hpp"

#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sys/seccomp_arguments.hpp"
#include "sys/seccomp_rule.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {
namespace {

using namespace seccomp_rules;

// Why a deny-list. The sandbox runs arbitrary tools (compilers, interpreters, git, shells), and an
// allow-list of the syscalls they make breaks them one release at a time. Namespaces, an
// unprivileged uid and no_new_privs already keep the process away from host files, users and
// privileges; seccomp is the layer against the kernel itself and against escape routes that
// remain open to an unprivileged process: nested user namespaces, mount APIs, ptrace, keyrings,
// eBPF, io_uring, odd socket families, terminal injection, foreign ABIs. So the default action is
// ALLOW and the calls below fail with EPERM, an errno programs already handle (running unprivileged
// gives the same answer). Exceptions: clone3 and syscall numbers newer than this table answer
// ENOSYS, and foreign ABIs kill the process.
// The same table, with the reasoning per entry, is in docs/seccomp.md: keep the two in step.

// CLONE_NEWTIME (0x80) is missing on purpose: for clone(2) that bit lies in the exit-signal byte
// (CSIGNAL), which the kernel strips from the flags, so clone(2) never makes a time namespace and
// refusing the bit would only refuse odd exit signals. A time namespace needs clone3 (ENOSYS
// here) or unshare (refused). See kernel/fork.c, SYSCALL_DEFINE5(clone).
constexpr std::uint32_t kNewNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                             CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
constexpr std::uint32_t kPersonalityQuery = 0xffffffff;  // personality(0xffffffff) only reads

// clang-format off
constexpr DenyRule kDenyList[] = {
  // Other processes: reading or steering them.
  deny("ptrace",               "debug/inject into other processes; a classic escape and kernel-bug surface"),
  deny("process_vm_readv",     "read another process's memory without attaching"),
  deny("process_vm_writev",    "write another process's memory without attaching"),
  deny("kcmp",                 "compare kernel objects of other processes (kernel layout leak)"),
  deny("pidfd_getfd",          "copy a file descriptor out of another process"),
  // The file-system view is fixed before exec; nothing inside may change it.
  deny("mount",                "mount or remount file systems"),
  deny("umount2",              "unmount, which could uncover what the sandbox hides"),
  deny("pivot_root",           "change the root mount"),
  deny("chroot",               "change the root directory (old escape tricks with open directories)"),
  deny("move_mount",           "new mount API: attach or move mounts"),
  deny("open_tree",            "new mount API: clone a mount tree"),
  deny_number("open_tree_attr", 467, "new mount API (Linux 6.15): clone a mount tree with new attributes"),
  deny("fsopen",               "new mount API: open a file-system context"),
  deny("fsconfig",             "new mount API: configure a file-system context"),
  deny("fsmount",              "new mount API: create a mount"),
  deny("fspick",               "new mount API: reconfigure an existing mount"),
  deny("mount_setattr",        "change mount attributes (read-only, nosuid, idmap)"),
  // Namespaces: a nested user namespace hands out capabilities over fresh namespaces, the door
  // to most unprivileged kernel exploits.
  deny("unshare",              "leave the sandbox's namespaces or make nested ones (all flags)"),
  deny("setns",                "join another namespace"),
  deny_if("clone", any_bit_of(0, kNewNamespaceFlags),
                               "clone(2) into new namespaces: unshare by another name"),
  enosys("clone3",             "flags in memory seccomp cannot read; on ENOSYS glibc falls back to clone(2)"),
  // Large, bug-prone kernel subsystems no tool needs.
  deny("keyctl",               "kernel keyrings: not namespaced, frequent bugs"),
  deny("add_key",              "kernel keyrings: create a key"),
  deny("request_key",          "kernel keyrings: look up or upcall for a key"),
  deny("bpf",                  "eBPF verifier and JIT: a frequent exploit target"),
  deny("perf_event_open",      "perf events: kernel bugs and side channels"),
  deny("io_uring_setup",       "io_uring: many kernel exploits, and its operations bypass seccomp"),
  deny("io_uring_enter",       "io_uring: submit operations"),
  deny("io_uring_register",    "io_uring: register buffers and files"),
  deny("userfaultfd",          "stall the kernel at a page fault: widens race windows for exploits"),
  enosys("io_setup",           "kernel AIO: its budget (fs.aio-max-nr) is one for the whole host, so one run could "
                               "take it from every process; on ENOSYS libaio users fall back to threads"),
  deny("lookup_dcookie",       "old profiling interface: resolve kernel directory cookies"),
  // The machine: kernel, clock, devices, accounting.
  deny("kexec_load",           "boot another kernel"),
  deny("kexec_file_load",      "boot another kernel"),
  deny("init_module",          "load a kernel module"),
  deny("finit_module",         "load a kernel module"),
  deny("delete_module",        "unload a kernel module"),
  deny("reboot",               "reboot or halt the machine"),
  deny("swapon",               "enable swap"),
  deny("swapoff",              "disable swap"),
  deny("acct",                 "switch process accounting"),
  deny("syslog",               "read or clear the kernel log (kernel addresses, other tenants' messages)"),
  deny("quotactl",             "disk quota control"),
  deny("quotactl_fd",          "disk quota control"),
  deny("vhangup",              "hang up the terminal"),
  deny("settimeofday",         "set the system clock"),
  deny("clock_settime",        "set a system clock"),
  deny("clock_adjtime",        "tune a system clock"),
  deny("adjtimex",             "tune the system clock"),
  deny("iopl",                 "raw I/O-port privilege level"),
  deny("ioperm",               "raw I/O-port access"),
  deny("modify_ldt",           "x86 segment descriptors: old kernel bugs; only Wine/DOSEMU use it"),
  deny("uselib",               "obsolete a.out loader"),
  // Files by handle and file-system-wide monitoring.
  deny("open_by_handle_at",    "open any inode by handle, bypassing paths (the 'shocker' container escape)"),
  deny("name_to_handle_at",    "make handles for open_by_handle_at; leaks inode identities"),
  deny("fanotify_init",        "file-system-wide event monitoring"),
  // Process personality: only PER_LINUX and the read-only query.
  deny_if("personality", low32_not_in(0, {PER_LINUX, kPersonalityQuery}),
                               "execution domains, ADDR_NO_RANDOMIZE (ASLR off), READ_IMPLIES_EXEC, ..."),
  // Sockets: AF_UNIX, AF_INET, AF_INET6, and netlink for routes only.
  deny_if("socket", low32_not_in(0, {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}),
                               "vsock, packet, key, bluetooth, can, tipc, rds, xdp, alg, ...: rare, bug-prone code"),
  deny_if("socket", low32_in(0, {AF_NETLINK}), low32_not_in(2, {NETLINK_ROUTE}),
                               "netlink beyond NETLINK_ROUTE (audit, netfilter, uevent, generic, sock_diag)"),
  deny_if("socketpair", low32_not_in(0, {AF_UNIX}),
                               "socketpair for any family but AF_UNIX, as for socket()"),
  // Terminals.
  deny_if("ioctl", low32_in(1, {TIOCSTI, TIOCLINUX, TIOCSETD}),
                               "push input into a terminal (CVE-2017-5226), Linux console commands, and line "
                               "disciplines (their code is kernel attack surface; bwrap's /dev has a ptmx)"),
};
// clang-format on

// Syscall numbers after the newest one this table was reviewed against (469, file_setattr, Linux
// 6.17; 6.18 adds none), up to 511, below the 512-547 slots x86_64's table keeps for x32: a
// deny-list cannot know what a future kernel adds, so those answer ENOSYS, as an older kernel
// would, until someone reviews them here and moves the bound.
constexpr long kFirstUnreviewedSyscall = 470;
constexpr long kLastUnreviewedSyscall = 511;

// Numbered rules rely on the numbering shared by all architectures for syscalls added since Linux
// 5.1; these are the architectures we know use it unshifted.
bool has_generic_syscall_numbers() noexcept {
  const std::uint32_t arch = seccomp_arch_native();
  return arch == SCMP_ARCH_X86_64 || arch == SCMP_ARCH_AARCH64 || arch == SCMP_ARCH_RISCV64;
}

struct CtxRelease {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

// The rule's syscall number on the native architecture.
Result<int> number_of(const DenyRule& rule) {
  const int nr = seccomp_syscall_resolve_name(rule.syscall);
  if (nr != __NR_SCMP_ERROR) return nr;
  if (rule.number < 0 || !has_generic_syscall_numbers()) {
    return fail(Errc::sandbox_setup, std::string("seccomp: libseccomp does not know syscall ") + rule.syscall);
  }
  return static_cast<int>(rule.number);
}

// The rules without an argument condition go to libseccomp; those with one are returned, for
// compile_argument_rules.
Result<std::vector<ArgumentRule>> add_deny_list(scmp_filter_ctx ctx) {
  std::vector<ArgumentRule> conditional;
  for (const auto& rule : kDenyList) {
    const auto nr = number_of(rule);
    if (!nr) return error_of(nr);
    if (rule.when.test != Test::any) {
      conditional.push_back({*nr, rule});
      continue;
    }
    const int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.err)), *nr, 0, nullptr);
    if (rc < 0) return fail(Errc::sandbox_setup, std::string("seccomp_rule_add ") + rule.syscall, -rc);
  }
  return conditional;
}

Result<void> add_unreviewed_range(scmp_filter_ctx ctx) {
  if (!has_generic_syscall_numbers()) return fail(Errc::sandbox_setup, "seccomp: unsupported architecture");
  for (long nr = kFirstUnreviewedSyscall; nr <= kLastUnreviewedSyscall; ++nr) {
    const int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(ENOSYS), static_cast<int>(nr), 0, nullptr);
    if (rc < 0) return fail(Errc::sandbox_setup, "seccomp_rule_add " + std::to_string(nr), -rc);
  }
  return {};
}

// libseccomp 2.5 has no seccomp_export_bpf_mem: export into a memfd and read it back.
Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  unique_fd fd(::memfd_create("pagi-exec-seccomp", MFD_CLOEXEC));
  if (!fd) return fail(Errc::sandbox_setup, "memfd_create for seccomp_export_bpf", errno);
  if (const int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) {
    return fail(Errc::sandbox_setup, "seccomp_export_bpf", -rc);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(Errc::sandbox_setup, "fstat seccomp memfd", errno);
  const auto bytes = static_cast<std::size_t>(st.st_size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0 || bytes / sizeof(sock_filter) > BPF_MAXINSNS) {
    return fail(Errc::sandbox_setup, "seccomp_export_bpf: program of " + std::to_string(bytes) + " bytes");
  }
  std::vector<sock_filter> code(bytes / sizeof(sock_filter));
  auto* out = reinterpret_cast<char*>(code.data());
  std::size_t got = 0;
  while (got < bytes) {
    const auto n = ::pread(fd.get(), out + got, bytes - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errc::sandbox_setup, "read seccomp memfd", n < 0 ? errno : EIO);
    got += static_cast<std::size_t>(n);
  }
  return code;
}

}  // namespace

Result<SeccompProgram> SeccompProgram::make_default() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return fail(Errc::sandbox_setup, "seccomp_init");
  // Only the native architecture is in the filter, so i386 (`int $0x80`) calls hit the bad-arch
  // action. x32 calls (x86_64 arch with bit 0x40000000 in the number) do too: libseccomp 2.5
  // sends numbers >= 0x40000000 to the bad-arch action when x32 is not in the filter (tested).
  // Kill the whole process, not just the thread: a foreign ABI is never a mistake to recover from.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return fail(Errc::sandbox_setup, "seccomp: bad-arch action KILL_PROCESS (Linux >= 4.14)", -rc);
  }
  // A binary search over syscall numbers instead of a linear scan: with a deny-list most calls
  // are allowed, and each would otherwise walk the whole list.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return fail(Errc::sandbox_setup, "seccomp: binary-tree optimization", -rc);
  }
  auto conditional = add_deny_list(ctx.get());
  if (!conditional) return error_of(conditional);
  if (auto range = add_unreviewed_range(ctx.get()); !range) return error_of(range);
  // The argument conditions first, then libseccomp's program for every other rule.
  auto code = compile_argument_rules(seccomp_arch_native(), *conditional);
  if (!code) return error_of(code);
  auto rest = export_bpf(ctx.get());
  if (!rest) return error_of(rest);
  code->insert(code->end(), rest->begin(), rest->end());
  if (code->size() > BPF_MAXINSNS) return fail(Errc::sandbox_setup, "seccomp: a program of " + std::to_string(code->size()) + " instructions");
  return SeccompProgram(std::move(*code));
}

Result<SeccompProgram> SeccompProgram::from_instructions(std::vector<sock_filter> code) {
  if (code.empty() || code.size() > BPF_MAXINSNS) {
    return fail(Errc::internal, "a seccomp program of " + std::to_string(code.size()) + " instructions");
  }
  return SeccompProgram(std::move(code));
}

sock_fprog SeccompProgram::fprog() const noexcept {
  // The kernel only reads the program; sock_fprog just lacks the const.
  return sock_fprog{static_cast<unsigned short>(code_.size()), const_cast<sock_filter*>(code_.data())};
}

bool SeccompProgram::operator==(const SeccompProgram& other) const noexcept {
  return std::equal(code_.begin(), code_.end(), other.code_.begin(), other.code_.end(),
                    [](const sock_filter& a, const sock_filter& b) {
                      return a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k;
                    });
}

int load_seccomp_in_child(const SeccompProgram& program) noexcept {
  sock_fprog prog = program.fprog();
  if (prog.len == 0) return EINVAL;
  // The raw syscall: no libseccomp (it allocates) and no glibc wrapper (none in glibc 2.36).
  // No SECCOMP_FILTER_FLAG_TSYNC: the child between fork and exec has a single thread.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return errno;
  return 0;
}

}  // namespace pagi_exec::sys
