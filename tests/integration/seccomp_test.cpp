// SPDX-License-Identifier: Apache-2.0
// The seccomp deny-list against real syscalls: every case forks a child that installs the filter.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <utility>

#include "denied_calls.hpp"
#include "sys/seccomp.hpp"
#include "test_support.hpp"

using pagi_exec::sys::load_seccomp_in_child;
using pagi_exec::sys::SeccompProgram;

extern char** environ;

namespace {

using Longs = std::initializer_list<long>;

constexpr int kSetupFailed = 250;  // exit code of a child that could not install the filter
constexpr long kHighBits = 1L << 32;  // set in an argument whose kernel type is 32 bits wide

// The default program, built once per test executable.
const pagi_exec::Result<SeccompProgram>& made() {
  static const auto program = SeccompProgram::make_default();
  return program;
}

const SeccompProgram& filter() {
  REQUIRE_MESSAGE(made(), (made() ? "" : made().error().message()));
  return *made();
}

// How a child ended: exit code, or the signal that killed it.
struct ChildEnd {
  int code = -1;
  int signal = 0;
};

// Forks. The child leaves the test's session (so even a broken filter cannot reach the test's
// terminal), turns off core dumps (a foreign-ABI kill would dump), sets no_new_privs, installs
// `program` unless it is null, and exits with what `body` returns.
template <class Body>
ChildEnd in_child(const SeccompProgram* program, Body body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const int sig : {SIGSEGV, SIGSYS, SIGILL, SIGBUS, SIGABRT}) ::signal(sig, SIG_DFL);  // not doctest's
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::setsid();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(kSetupFailed);
    if (program != nullptr && load_seccomp_in_child(*program) != 0) ::_exit(kSetupFailed);
    ::_exit(body());
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) REQUIRE(errno == EINTR);
  if (WIFSIGNALED(status)) return {-1, WTERMSIG(status)};
  return {WEXITSTATUS(status), 0};
}

// The errno of a failed call, 0 if it succeeded. Use as errno_of(call(...)).
int errno_of(long result) { return result < 0 ? errno : 0; }

// What `body` returns in a child under the default filter: by convention an errno, 0 for success.
template <class Body>
int filtered(Body body) {
  const auto end = in_child(&filter(), body);
  REQUIRE(end.signal == 0);
  REQUIRE(end.code != kSetupFailed);
  return end.code;
}

// The signal that kills a child running `body` under the default filter, 0 if it exits.
template <class Body>
int killing_signal(Body body) {
  const auto end = in_child(&filter(), body);
  REQUIRE(end.code != kSetupFailed);
  return end.signal;
}

// A raw clone(2) fork with `flags` (x86_64 order: flags, stack, parent_tid, child_tid, tls).
int clone_errno(long flags) {
  const long pid = ::syscall(SYS_clone, flags | SIGCHLD, 0L, 0L, 0L, 0L);
  if (pid == 0) ::_exit(0);
  if (pid < 0) return errno;
  ::waitpid(static_cast<pid_t>(pid), nullptr, __WALL);
  return 0;
}

using test_support::kAlwaysDenied;

}  // namespace

TEST_SUITE("seccomp") {
  TEST_CASE("the default program builds, fits the kernel's limit and is a regular value") {
    const auto& program = filter();
    CHECK(program.size() > 0);
    CHECK(program.size() <= std::size_t{BPF_MAXINSNS});
    CHECK(program.fprog().len == program.size());
    // Every run's filter is converted and JIT-compiled by the kernel in proportion to its length:
    // the argument conditions spelled as libseccomp's masked blocks made it 631 instructions.
    CHECK(program.size() < 250);

    auto again = SeccompProgram::make_default();
    REQUIRE(again);
    CHECK(*again == program);  // deterministic

    // A copy points at its own instructions and keeps working after the original is gone.
    auto original = std::make_unique<SeccompProgram>(program);
    const SeccompProgram copy = *original;
    CHECK(copy.fprog().filter != original->fprog().filter);
    original.reset();
    const auto end = in_child(&copy, [] { return errno_of(::syscall(SYS_ptrace, -1L, 0L, 0L, 0L)); });
    CHECK(end.signal == 0);
    CHECK(end.code == EPERM);

    // A moved-from program is empty and refuses to load (tried in a child, in case it did load).
    SeccompProgram moved = std::move(*again);
    CHECK(moved == program);
    // NOLINTNEXTLINE(bugprone-use-after-move): using the moved-from object is the point
    const auto refused = in_child(nullptr, [&] { return load_seccomp_in_child(*again); });
    CHECK(refused.code == EINVAL);
  }

  TEST_CASE("the filter is in force in the child: /proc/self/status says so") {
    const int seccomp_mode = filtered([] {
      char buf[4096];
      const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 100;
      const auto n = ::read(fd, buf, sizeof buf - 1);
      ::close(fd);
      if (n <= 0) return 101;
      buf[n] = '\0';
      if (std::strstr(buf, "NoNewPrivs:\t1") == nullptr) return 102;
      return std::strstr(buf, "Seccomp:\t2") != nullptr ? 0 : 103;  // 2 = SECCOMP_MODE_FILTER
    });
    CHECK(seccomp_mode == 0);
  }

  TEST_CASE("listed syscalls fail with EPERM") {
    for (const auto& call : kAlwaysDenied) {
      INFO(call.name);
      const auto& a = call.args;
      CHECK(filtered([&] { return errno_of(::syscall(call.nr, a[0], a[1], a[2], a[3], a[4], a[5])); }) == EPERM);
    }
  }

  TEST_CASE("nested namespaces: unshare and clone with any CLONE_NEW* flag fail with EPERM") {
    CHECK(filtered([] { return errno_of(::unshare(CLONE_NEWUSER)); }) == EPERM);
    CHECK(filtered([] { return clone_errno(CLONE_NEWUSER); }) == EPERM);
    for (const long flag : Longs{CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET}) {
      INFO("flag " << flag);
      CHECK(filtered([&] { return clone_errno(flag); }) == EPERM);
    }
    // With other flags around it, and with high bits the kernel ignores (it reads 32 bits).
    CHECK(filtered([] { return clone_errno(CLONE_NEWUSER | CLONE_NEWNS | CLONE_FILES); }) == EPERM);
    CHECK(filtered([] { return clone_errno(kHighBits | CLONE_NEWUSER); }) == EPERM);
    // For clone(2) the CLONE_NEWTIME bit lies in the exit-signal byte (CSIGNAL): the kernel strips
    // it from the flags, so the filter lets it pass and no time namespace comes of it.
    CHECK(filtered([] {
      char before[64]{};
      char after[64]{};
      ::readlink("/proc/self/ns/time", before, sizeof before - 1);
      const long pid = ::syscall(SYS_clone, CLONE_NEWTIME | SIGCHLD, 0L, 0L, 0L, 0L);
      if (pid == 0) {
        ::readlink("/proc/self/ns/time", after, sizeof after - 1);
        ::_exit(std::strcmp(before, after) == 0 ? 0 : 1);
      }
      if (pid < 0) return errno;
      int status = 0;
      ::waitpid(static_cast<pid_t>(pid), &status, __WALL);  // exit signal 0x91 is not SIGCHLD
      return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    }) == 0);
  }

  TEST_CASE("clone3 and unreviewed syscall numbers fail with ENOSYS") {
    // Without the filter the kernel knows clone3 (EINVAL for a null argument) ...
    const auto unfiltered = in_child(nullptr, [] { return errno_of(::syscall(SYS_clone3, 0L, 0L)); });
    CHECK(unfiltered.code == EINVAL);
    // ... with it, clone3 looks absent, so glibc falls back to clone(2) whose flags we can read.
    CHECK(filtered([] { return errno_of(::syscall(SYS_clone3, 0L, 0L)); }) == ENOSYS);
    CHECK(filtered([] { return errno_of(::syscall(470L, 0L, 0L)); }) == ENOSYS);
    CHECK(filtered([] { return errno_of(::syscall(511L, 0L, 0L)); }) == ENOSYS);
  }

  TEST_CASE("io_setup fails with ENOSYS: the host-wide AIO budget is out of reach") {
    // Without the filter the kernel makes the context (or says the host's budget is spent) ...
    const auto unfiltered = in_child(nullptr, [] {
      unsigned long context = 0;
      const long made = ::syscall(SYS_io_setup, 1L, &context);
      if (made == 0) (void)::syscall(SYS_io_destroy, context);
      return errno_of(made);
    });
    CHECK((unfiltered.code == 0 || unfiltered.code == EAGAIN));
    // ... with it, there is no kernel AIO: one run cannot take every io_setup on the host.
    CHECK(filtered([] {
      unsigned long context = 0;
      return errno_of(::syscall(SYS_io_setup, 65536L, &context));
    }) == ENOSYS);
  }

  TEST_CASE("sockets: unix, inet, inet6 and netlink-route only") {
    auto socket_errno = [](long family, long type, long protocol) {
      return filtered([=] {
        const long fd = ::syscall(SYS_socket, family, type, protocol);
        return errno_of(fd);
      });
    };
    CHECK(socket_errno(AF_UNIX, SOCK_STREAM, 0) == 0);
    CHECK(socket_errno(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) == 0);
    CHECK(socket_errno(AF_INET, SOCK_STREAM, 0) == 0);
    CHECK(socket_errno(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0) == 0);
    CHECK(socket_errno(AF_INET6, SOCK_STREAM, 0) != EPERM);  // EAFNOSUPPORT where IPv6 is off
    CHECK(socket_errno(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) == 0);
    CHECK(socket_errno(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE) == 0);

    for (const long family : Longs{AF_UNSPEC, AF_VSOCK, AF_PACKET, AF_KEY, AF_BLUETOOTH, AF_CAN, AF_TIPC, AF_RDS, AF_ALG,
                                   AF_XDP, AF_AX25, AF_APPLETALK, AF_X25, AF_LLC, AF_MAX, AF_MAX + 10, -1}) {
      INFO("family " << family);
      CHECK(socket_errno(family, SOCK_STREAM, 0) == EPERM);
      CHECK(socket_errno(family, SOCK_DGRAM, 0) == EPERM);
    }
    for (const long protocol : Longs{NETLINK_AUDIT, NETLINK_KOBJECT_UEVENT, NETLINK_SOCK_DIAG, NETLINK_GENERIC,
                                     NETLINK_NETFILTER, NETLINK_XFRM, NETLINK_SELINUX, 31, -1}) {
      INFO("netlink protocol " << protocol);
      CHECK(socket_errno(AF_NETLINK, SOCK_RAW, protocol) == EPERM);
    }
    // The kernel reads family and protocol as int: high bits neither hide nor forbid a value.
    CHECK(socket_errno(kHighBits | AF_VSOCK, SOCK_STREAM, 0) == EPERM);
    CHECK(socket_errno(kHighBits | AF_INET, SOCK_STREAM, 0) == 0);
    CHECK(socket_errno(AF_NETLINK, SOCK_RAW, kHighBits | NETLINK_AUDIT) == EPERM);
    CHECK(socket_errno(kHighBits | AF_NETLINK, SOCK_RAW, kHighBits | NETLINK_ROUTE) == 0);

    auto socketpair_errno = [](int family) {
      return filtered([=] {
        int fds[2];
        return errno_of(::socketpair(family, SOCK_STREAM, 0, fds));
      });
    };
    CHECK(socketpair_errno(AF_UNIX) == 0);
    CHECK(socketpair_errno(AF_INET) == EPERM);
    CHECK(socketpair_errno(AF_NETLINK) == EPERM);
    CHECK(socketpair_errno(AF_VSOCK) == EPERM);
  }

  TEST_CASE("ioctl: TIOCSTI, TIOCLINUX and TIOCSETD fail with EPERM, other requests reach the kernel") {
    auto ioctl_errno = [](long request) {
      return filtered([=] {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return 100;
        char c = 'x';
        int value = 0;
        void* arg = (request == FIONREAD) ? static_cast<void*>(&value) : static_cast<void*>(&c);
        return errno_of(::syscall(SYS_ioctl, fds[0], request, arg));
      });
    };
    CHECK(ioctl_errno(TIOCSTI) == EPERM);
    CHECK(ioctl_errno(TIOCLINUX) == EPERM);
    CHECK(ioctl_errno(TIOCSETD) == EPERM);
    CHECK(ioctl_errno(kHighBits | TIOCSTI) == EPERM);  // the kernel reads the request as 32 bits
    CHECK(ioctl_errno(TCGETS) == ENOTTY);              // a pipe is no terminal: the kernel answered
    CHECK(ioctl_errno(FIONREAD) == 0);
  }

  TEST_CASE("personality: the query and PER_LINUX only") {
    auto personality_errno = [](long persona) {
      return filtered([=] { return errno_of(::syscall(SYS_personality, persona)); });
    };
    CHECK(personality_errno(0xffffffffL) == 0);
    CHECK(personality_errno(PER_LINUX) == 0);
    CHECK(filtered([] { return errno_of(::personality(0xffffffff)); }) == 0);
    for (const long persona : {long{ADDR_NO_RANDOMIZE}, long{READ_IMPLIES_EXEC}, long{PER_LINUX32},
                               long{ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC}, long{MMAP_PAGE_ZERO}, 0xfffffffeL}) {
      INFO("persona " << persona);
      CHECK(personality_errno(persona) == EPERM);
    }
    CHECK(personality_errno(kHighBits | ADDR_NO_RANDOMIZE) == EPERM);
    CHECK(personality_errno(kHighBits) == 0);  // the kernel reads PER_LINUX
  }

#if defined(__x86_64__)
  TEST_CASE("foreign ABIs kill the process") {
    SUBCASE("x32 syscall numbers") {
      constexpr long kX32SyscallBit = 0x40000000;
      CHECK(killing_signal([] { return errno_of(::syscall(kX32SyscallBit | SYS_getpid)); }) == SIGSYS);
      CHECK(killing_signal([] { return errno_of(::syscall(kX32SyscallBit | SYS_ptrace, -1L)); }) == SIGSYS);
      // The whole process dies, not only the calling thread (KILL_PROCESS, not KILL_THREAD).
      CHECK(killing_signal([] {
        pthread_t thread{};
        auto x32_getpid = [](void*) -> void* {
          ::syscall(0x40000000L | SYS_getpid);
          return nullptr;
        };
        if (::pthread_create(&thread, nullptr, x32_getpid, nullptr) != 0) return 100;
        ::pthread_join(thread, nullptr);
        return 0;  // reached only if the thread alone was killed
      }) == SIGSYS);
    }
    SUBCASE("i386 int $0x80") {
      // getpid is 20 in the i386 table. Without IA32 emulation the instruction faults (SIGSEGV)
      // before seccomp is asked, so probe first without the filter.
      auto int80_getpid = [] {
        long result = 20;
        __asm__ volatile("int $0x80" : "+a"(result) : : "memory", "r8", "r9", "r10", "r11");
        return result == ::getpid() ? 0 : 1;
      };
      const auto probe = in_child(nullptr, int80_getpid);
      if (probe.signal != 0 || probe.code != 0) {
        test_support::skip_part("no IA32 emulation on this kernel: the i386 int $0x80 case cannot run here");
      } else {
        CHECK(killing_signal(int80_getpid) == SIGSYS);
      }
    }
  }
#endif

  TEST_CASE("ordinary work still runs under the filter") {
    SUBCASE("fork + exec /bin/true") {
      CHECK(filtered([] {
        const pid_t pid = ::fork();
        if (pid < 0) return errno;
        if (pid == 0) {
          char* const argv[] = {const_cast<char*>("true"), nullptr};
          ::execve("/bin/true", argv, environ);
          ::_exit(127);
        }
        int status = 0;
        if (::waitpid(pid, &status, 0) < 0) return errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }) == 0);
    }
    SUBCASE("posix_spawn (glibc tries clone3, gets ENOSYS, uses clone)") {
      CHECK(filtered([] {
        char* const argv[] = {const_cast<char*>("true"), nullptr};
        pid_t pid = 0;
        if (const int err = ::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ); err != 0) return err;
        int status = 0;
        if (::waitpid(pid, &status, 0) < 0) return errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }) == 0);
    }
    SUBCASE("threads (pthread_create, same clone3 fallback)") {
      CHECK(filtered([] {
        pthread_t thread{};
        static int ran = 0;
        const int err = ::pthread_create(&thread, nullptr, [](void*) -> void* { ran = 1; return nullptr; }, nullptr);
        if (err != 0) return err;
        ::pthread_join(thread, nullptr);
        return ran == 1 ? 0 : 100;
      }) == 0);
    }
    SUBCASE("a plain clone(2) fork") {
      CHECK(filtered([] { return clone_errno(0); }) == 0);
    }
    SUBCASE("unix socketpair round trip") {
      CHECK(filtered([] {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return errno;
        char c = 0;
        if (::write(fds[0], "k", 1) != 1 || ::read(fds[1], &c, 1) != 1) return errno;
        return c == 'k' ? 0 : 100;
      }) == 0);
    }
  }
}
