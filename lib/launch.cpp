// SPDX-License-Identifier: Apache-2.0
// Launch plans for each isolation kind, and the start-up isolation probe.
#include "launch.hpp"

#include "pagi_exec/policy.hpp"
#include "sys/mountns.hpp"
#include "sys/run_as.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec::detail {
namespace {

// The environment is a fixed, minimal set: never the server's own variables (which may hold
// credentials). Paths are given as the command sees them.
std::vector<std::string> command_env(const std::string& home, const std::string& tmp, const std::string& workspace,
                                     const Placement& place) {
  return {
      std::string("PATH=") + sandbox_path,
      "HOME=" + home,
      "PWD=" + home,
      "TMPDIR=" + tmp,
      "LANG=C.UTF-8",
      "PAGI_WORKSPACE=" + workspace,
      "PAGI_TWIN_ID=" + place.twin_id,
      "PAGI_EXECUTION_ID=" + place.execution_id,
  };
}

// System folders a program needs, read-only. On merged-/usr systems (Debian 12) /bin, /lib, ...
// are symlinks into /usr and are recreated as symlinks inside.
void add_system_mounts(std::vector<std::string>& args) {
  args.insert(args.end(), {"--ro-bind", "/usr", "/usr"});
  for (const auto& dir : sys::system_dirs()) {
    if (dir.link_target.empty()) {
      args.insert(args.end(), {"--ro-bind", dir.path, dir.path});
    } else {
      args.insert(args.end(), {"--symlink", dir.link_target, dir.path});
    }
  }
  // Only what dynamic linking, user names and time zones need: no keys, no shadow, no hosts' secrets.
  for (const char* file : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                           "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/localtime"}) {
    args.insert(args.end(), {"--ro-bind-try", file, file});
  }
}

// bwrap(1), started as the sandbox's unprivileged uid (sys/run_as.hpp), so its user namespace
// maps that uid to itself and nothing inside is host root. Every namespace (user, ipc, pid,
// net, uts, cgroup), a fresh /proc and minimal /dev, no capabilities, its own session (TIOCSTI,
// CVE-2017-5226), dies with its parent. As in native mode: the native seccomp filter (from fd 3,
// loaded just before the command's exec, after bwrap's own setup needed mount and unshare);
// /tmp, /dev/shm and the working folder /work are size-capped tmpfs, and nothing else is
// writable: bwrap builds its root and /dev as the run's own uid, uncapped, so both are remounted
// read-only once set up; the twin's workspace is read-only at /workspace (a host folder cannot be
// size-capped; files a twin keeps go through file_write).
// /proc/sys is bound read-only over the new /proc (its files answer for the reader's namespaces,
// so this is the sandbox's own view; `--remount-ro /proc/sys` fails, it is no mount point). The
// sysctls were not writable by the unprivileged uid anyway; the read-only mount also holds for
// TOOLS_RUN_AS_ROOT. /proc/sysrq-trigger does not exist in a /proc mounted in a user namespace.
std::vector<std::string> bwrap_argv(const Sandbox& sandbox, const Placement& place, const Limits& limits,
                                    NetworkAccess network) {
  const auto tmpfs_size = std::to_string(limits.tmpfs_bytes);
  std::vector<std::string> args{sandbox.spec().bwrap_path.string(), "--unshare-all",
                                network == NetworkAccess::host ? "--share-net" : "--unshare-net", "--die-with-parent", "--new-session",
                                "--cap-drop", "ALL"};
  add_system_mounts(args);
  args.insert(args.end(), {"--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev",
                           "--size", tmpfs_size, "--perms", "01777", "--tmpfs", "/dev/shm",
                           "--size", tmpfs_size, "--perms", "01777", "--tmpfs", "/tmp",
                           "--size", tmpfs_size, "--perms", "0700", "--tmpfs", bwrap_work_dir,
                           "--ro-bind", place.workspace.string(), bwrap_workspace,
                           "--remount-ro", "/dev", "--remount-ro", "/",
                           "--seccomp", std::to_string(seccomp_fd_in_command),
                           "--chdir", bwrap_work_dir, "--"});
  return args;
}

// An egress run reaches the proxy on its namespace's loopback: the variables curl, pip, git,
// npm, Python's requests and urllib read (both spellings: tools disagree on which), and the
// loopback itself kept direct.
void add_proxy_env(std::vector<std::string>& env) {
  const std::string proxy = "http://127.0.0.1:" + std::to_string(egress_proxy_port);
  for (const char* name : {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}) {
    env.push_back(std::string(name) + "=" + proxy);
  }
  for (const char* name : {"NO_PROXY", "no_proxy"}) env.push_back(std::string(name) + "=localhost,127.0.0.1,::1");
}

LaunchPlan plan_for(const Sandbox& sandbox, std::vector<std::string> argv, const Placement& place, const Limits& limits,
                    const Decision& decision) {
  LaunchPlan plan{.cwd = place.execution_dir, .workspace = place.workspace, .isolation = sandbox.isolation(),
                  .limits = limits, .network = decision.network, .allow_domains = decision.allow_domains,
                  .deny_domains = decision.deny_domains, .twin_id = place.twin_id, .execution_id = place.execution_id};
  // cwd and bwrap: commands never act as host root unless the operator asked for it.
  plan.run_as = sys::command_credentials(sandbox.spec());
  plan.no_new_privs = !sandbox.spec().run_as_root;
  switch (sandbox.isolation()) {
    case Isolation::cwd: {
      const auto home = place.execution_dir.string();
      plan.argv = std::move(argv);
      plan.env = command_env(home, home, place.workspace.string(), place);
      break;
    }
    case Isolation::native:
      plan.cwd = native_work_dir;
      plan.argv = std::move(argv);
      plan.env = command_env(native_work_dir, "/tmp", native_workspace, place);
      if (plan.network == NetworkAccess::egress) add_proxy_env(plan.env);
      break;
    case Isolation::bwrap:
      plan.cwd = "/";  // bwrap's own; the command starts in /work (--chdir)
      plan.argv = bwrap_argv(sandbox, place, limits, plan.network);
      plan.argv.insert(plan.argv.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
      plan.env = command_env(bwrap_work_dir, "/tmp", bwrap_workspace, place);
      plan.seccomp_fd = true;
      break;
  }
  return plan;
}

}  // namespace

// Why bwrap starts a program through a shell: bwrap execvp()s the command itself and, when that
// fails, prints "bwrap: execvp ..." and exits 1, which cannot be told from the command's own exit
// 1. Deciding 126/127 on the host instead would have to reproduce bwrap's view exactly (fresh
// tmpfs /tmp and /work, a few /etc files, symlinks resolved inside the view), and any difference
// would answer wrongly. So the program is exec'd by `exec "$0" "$@"` in /bin/sh, which exists in
// every view (the shell bridge needs it) and answers a failed exec the shell's way, inside the
// very view the program would run in: 127 when it is missing, 126 when it cannot be executed (a
// folder, no execute permission), with the reason on stderr. $0 and "$@" are passed as words,
// never parsed, so the shell adds no interpretation of its own; the program replaces it. The
// program's own exit 126/127 reads the same, as it does in any shell.
inline constexpr const char* bwrap_exec_line = "exec \"$0\" \"$@\"";

LaunchPlan make_launch_plan(const Sandbox& sandbox, const Command& command, const Placement& place,
                            const Limits& limits, const Decision& decision) {
  if (sandbox.isolation() != Isolation::bwrap || command.kind() != ToolKind::program) {
    return plan_for(sandbox, command.argv(), place, limits, decision);
  }
  std::vector<std::string> argv{"/bin/sh", "-c", bwrap_exec_line};
  argv.insert(argv.end(), command.argv().begin(), command.argv().end());
  return plan_for(sandbox, std::move(argv), place, limits, decision);
}

LaunchPlan make_probe_plan(const Sandbox& sandbox, std::vector<std::string> argv, const Placement& place,
                           const Limits& limits) {
  return plan_for(sandbox, std::move(argv), place, limits, Decision{});
}

}  // namespace pagi_exec::detail
