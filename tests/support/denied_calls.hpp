// SPDX-License-Identifier: Apache-2.0
// The syscalls the seccomp filter must refuse whatever their arguments: one table for the
// in-process filter test (seccomp_test) and the probe run inside each sandbox (syscall_probe).
#pragma once

#include <sched.h>
#include <sys/syscall.h>

#include <array>

namespace test_support {

// Syscalls the filter must refuse whatever their arguments, each with arguments that make the
// kernel fail harmlessly should the filter ever let the call through. The list is this test's
// own (the brief's), not the implementation's table, so a dropped entry shows up here.
struct Call {
  const char* name;
  long nr;
  std::array<long, 6> args;
};

inline const char* const kNoFile = "/nonexistent/pagi-exec-seccomp-test";
inline const long kNoFileArg = reinterpret_cast<long>(kNoFile);

inline const Call kAlwaysDenied[] = {
    {"ptrace", SYS_ptrace, {-1, 0, 0, 0}},
    {"process_vm_readv", SYS_process_vm_readv, {0, 0, 0, 0, 0, 0}},
    {"process_vm_writev", SYS_process_vm_writev, {0, 0, 0, 0, 0, 0}},
    {"mount", SYS_mount, {0, 0, 0, 0, 0}},
    {"umount2", SYS_umount2, {0, 0}},
    {"pivot_root", SYS_pivot_root, {0, 0}},
    {"chroot", SYS_chroot, {kNoFileArg}},
    {"move_mount", SYS_move_mount, {-1, 0, -1, 0, 0}},
    {"open_tree", SYS_open_tree, {-1, 0, 0}},
    {"open_tree_attr", 467, {-1, 0, 0, 0, 0}},
    {"fsopen", SYS_fsopen, {0, 0}},
    {"fsconfig", SYS_fsconfig, {-1, 0, 0, 0, 0}},
    {"fsmount", SYS_fsmount, {-1, 0, 0}},
    {"fspick", SYS_fspick, {-1, 0, 0}},
    {"mount_setattr", SYS_mount_setattr, {-1, 0, 0, 0, 0}},
    {"unshare(CLONE_NEWUSER)", SYS_unshare, {CLONE_NEWUSER}},
    {"unshare(CLONE_NEWNS)", SYS_unshare, {CLONE_NEWNS}},
    {"unshare(CLONE_NEWTIME)", SYS_unshare, {CLONE_NEWTIME}},
    {"unshare(CLONE_FILES)", SYS_unshare, {CLONE_FILES}},
    {"unshare(0)", SYS_unshare, {0}},
    {"setns", SYS_setns, {-1, 0}},
    {"keyctl", SYS_keyctl, {-1, 0, 0, 0, 0}},
    {"add_key", SYS_add_key, {0, 0, 0, 0, 0}},
    {"request_key", SYS_request_key, {0, 0, 0, 0}},
    {"bpf", SYS_bpf, {-1, 0, 0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"kexec_load", SYS_kexec_load, {0, 1000, 0, 0}},  // > KEXEC_SEGMENT_MAX: EINVAL
    {"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, 0, -1}},
    {"init_module", SYS_init_module, {0, 0, 0}},
    {"finit_module", SYS_finit_module, {-1, 0, 0}},
    {"delete_module", SYS_delete_module, {0, 0}},
    {"reboot", SYS_reboot, {0, 0, 0, 0}},  // no magic: EINVAL
    {"swapon", SYS_swapon, {kNoFileArg, 0}},
    {"swapoff", SYS_swapoff, {kNoFileArg}},
    {"acct", SYS_acct, {kNoFileArg}},
    {"userfaultfd", SYS_userfaultfd, {-1}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
    {"name_to_handle_at", SYS_name_to_handle_at, {-1, 0, 0, 0, 0}},
    {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
    {"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
    {"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
    {"lookup_dcookie", SYS_lookup_dcookie, {0, 0, 0}},
    {"syslog", SYS_syslog, {-1, 0, 0}},
    {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
    {"quotactl_fd", SYS_quotactl_fd, {-1, 0, 0, 0}},
    {"vhangup", SYS_vhangup, {}},  // the child has no controlling terminal (setsid)
    {"settimeofday", SYS_settimeofday, {0, 0}},
    {"clock_settime", SYS_clock_settime, {-1, 0}},
    {"clock_adjtime", SYS_clock_adjtime, {-1, 0}},
    {"adjtimex", SYS_adjtimex, {0}},
    {"iopl", SYS_iopl, {4}},                // level > 3: EINVAL
    {"ioperm", SYS_ioperm, {0x10000, 1, 0}},  // beyond the bitmap: EINVAL
    {"modify_ldt", SYS_modify_ldt, {-1, 0, 0}},
    {"uselib", SYS_uselib, {kNoFileArg}},
    {"fanotify_init", SYS_fanotify_init, {-1, 0}},
    {"pidfd_getfd", SYS_pidfd_getfd, {-1, 0, 0}},
    {"kcmp", SYS_kcmp, {-1, -1, 0, 0, 0}},
};

}  // namespace test_support
