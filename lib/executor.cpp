// SPDX-License-Identifier: Apache-2.0
// Executor::run, the checklist: decide -> place -> resolve -> plan -> spawn -> clean up -> record.
#include "pagi_exec/executor.hpp"

#include <csignal>

#include <cstring>

#include "file_write.hpp"
#include "launch.hpp"
#include "sys/janitor.hpp"
#include "sys/random.hpp"
#include "sys/run_as.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec {
namespace {

using Clock = std::chrono::system_clock;

}  // namespace

Limits Executor::limits_for(const Decision& decision, std::optional<std::chrono::milliseconds> timeout_cap) const {
  Limits limits = parts_.sandbox.limits();
  const TwinLimits& twin = decision.limits;
  if (twin.timeout) limits.timeout = *twin.timeout;
  if (twin.memory_bytes) limits.memory_bytes = *twin.memory_bytes;
  if (twin.max_processes) limits.max_processes = *twin.max_processes;
  if (twin.output_bytes) limits.output.max_bytes = *twin.output_bytes;
  if (twin.output_lines) limits.output.max_lines = *twin.output_lines;
  if (timeout_cap && *timeout_cap < limits.timeout) limits.timeout = std::max(*timeout_cap, std::chrono::milliseconds(1));
  return limits;
}

namespace {

Outcome refused(Outcome outcome) {
  outcome.exit_code = 1;
  outcome.message = outcome.decision.reason;
  return outcome;
}

// An outcome for a command that could not start, in the shell's convention (127 / 126).
Outcome not_started(Outcome outcome, int exit_code, std::string message) {
  outcome.ran = false;
  outcome.exit_code = exit_code;
  outcome.err.lines = {message};
  outcome.err.total_bytes = message.size() + 1;
  outcome.message = std::move(message);
  return outcome;
}

std::string describe_exit(const ProcessResult& result) {
  if (result.signal != 0) {
    const char* name = ::sigabbrev_np(result.signal);
    return "killed by signal " + std::to_string(result.signal) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return result.exit_code == 0 ? "completed" : "exited with status " + std::to_string(result.exit_code);
}

std::string describe_truncation(const char* name, const CapturedStream& stream) {
  if (!stream.truncated) return {};
  return std::string("; ") + name + " truncated (" + std::to_string(stream.total_bytes) + " bytes written, " +
         std::to_string(stream.lines.size()) + " lines kept)";
}

// Which limit the kernel enforced, from how the command ended and what the cgroups counted.
// A shell reports a child killed by signal N as exit status 128+N: that counts too.
LimitHit limit_hit(const ProcessResult& result, const Limits& limits) {
  const auto ended_by = [&](int sig) { return result.signal == sig || result.exit_code == signal_exit_base + sig; };
  if (result.timed_out) return LimitHit::timeout;
  if (result.oom_killed) return LimitHit::memory;
  if (ended_by(SIGXFSZ)) return LimitHit::file_size;
  const auto cpu = result.usage.cpu_user + result.usage.cpu_system;
  if (ended_by(SIGXCPU) || (result.signal == SIGKILL && limits.cpu_time.count() > 0 && cpu >= limits.cpu_time)) {
    return LimitHit::cpu;
  }
  if (result.pids_limit_hit) return LimitHit::pids;
  return LimitHit::none;
}

Outcome finish(Outcome outcome, ProcessResult result, const std::string& program, const Limits& limits) {
  if (result.exec_errno != 0) {
    const int code = result.exec_errno == ENOENT ? exit_not_found : exit_not_executable;
    return not_started(std::move(outcome), code,
                       "cannot execute " + program + ": " + std::strerror(result.exec_errno));
  }
  outcome.ran = true;
  outcome.exit_code = result.exit_code;
  outcome.signal = result.signal;
  outcome.timed_out = result.timed_out;
  outcome.cancelled = result.cancelled;
  outcome.usage = result.usage;
  outcome.limit_hit = limit_hit(result, limits);
  if (result.timed_out) {
    outcome.exit_code = exit_timeout;
    outcome.message = timeout_message;  // exact text: clients match on it
  } else if (result.cancelled) {
    outcome.message = "execution_cancelled: the caller went away or the server is stopping";
  } else {
    const std::string limit = outcome.limit_hit == LimitHit::none ? "" : std::string(to_string(outcome.limit_hit)) + ": ";
    outcome.message = limit + describe_exit(result) + describe_truncation("stdout", result.out) +
                      describe_truncation("stderr", result.err);
  }
  outcome.out = std::move(result.out);
  outcome.err = std::move(result.err);
  return outcome;
}

}  // namespace

Result<Executor> Executor::make(ExecutorParts parts) {
  if (!parts.spawner && parts.sandbox.isolation() == Isolation::native) {
    auto native = make_native_spawner(parts.sandbox);
    if (!native) return tl::unexpected(native.error());
    parts.spawner = std::move(*native);
  }
  if (!parts.spawner) parts.spawner = make_process_spawner();
  if (!parts.history) parts.history = std::make_shared<History>();
  // 0711: other users may not list the twins' folders.
  if (auto made = sys::ensure_directory(parts.sandbox.root_dir(), 0711); !made) {
    return tl::unexpected(made.error());
  }
  // cwd and bwrap commands drop to the sandbox's uid: they must reach their folders.
  const auto run_as = sys::command_credentials(parts.sandbox.spec());
  if (run_as && parts.sandbox.isolation() != Isolation::native) {
    if (auto reachable = sys::check_reachable(parts.sandbox.root_dir(), *run_as); !reachable) {
      return tl::unexpected(reachable.error());
    }
  }
  return Executor(std::move(parts));
}

void Executor::wait_for_cleanup() { sys::Janitor::instance().drain(); }

Result<Outcome> Executor::run(const Request& request, std::stop_token stop, const RunHooks& hooks) const {
  const auto started = Clock::now();
  const auto t0 = std::chrono::steady_clock::now();
  Outcome outcome;
  outcome.execution_id = sys::new_uuid_v4();
  outcome.isolation = parts_.sandbox.isolation();
  outcome.decision = parts_.policy.decide(request);
  // 1. The decision is on record before anything runs; a required audit log that cannot record
  //    it means nothing runs.
  if (parts_.audit) {
    if (auto recorded = parts_.audit->decided(request, outcome); !recorded && parts_.audit_required) {
      outcome.message = "audit log unavailable, nothing was run: " + recorded.error().message();
      parts_.history->record(make_record(request, outcome, started, Clock::now()));
      return fail(Errc::audit_unavailable, outcome.message);
    }
  }
  if (!outcome.decision.allowed) {
    auto refusal = refused(std::move(outcome));
    parts_.history->record(make_record(request, refusal, started, Clock::now()));
    return refusal;
  }
  // 2. Run it; record how it ended, whatever happened.
  auto result = run_allowed(request, outcome, std::move(stop), hooks);
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  Outcome ended = result ? *result : outcome;
  if (result) {
    result->elapsed = elapsed;
    ended.elapsed = elapsed;
  } else {
    ended.message = result.error().message();  // the decision stands, nothing ran
  }
  if (parts_.audit) (void)parts_.audit->finished(request, ended);  // it ran: too late to refuse
  parts_.history->record(make_record(request, ended, started, Clock::now()));
  return result;
}

Result<Outcome> Executor::run_allowed(const Request& request, Outcome outcome, std::stop_token stop,
                                      const RunHooks& hooks) const {
  const Sandbox& sandbox = parts_.sandbox;
  // 1. The twin id becomes a folder name: it must be one safe path component.
  if (auto valid = validate_twin_id(request.twin_id); !valid) return tl::unexpected(valid.error());

  // 2. What the tool means: a built-in, a tool without a program, or a command line.
  const ToolEntry* entry = parts_.catalog.find(request.tool);
  if (entry != nullptr && entry->kind == ToolKind::unavailable) {
    return not_started(std::move(outcome), exit_not_found, entry->note);
  }
  if (entry != nullptr && entry->kind == ToolKind::file_write) {
    if (hooks.started) hooks.started(outcome);
    auto written = detail::run_file_write(sandbox, request, std::move(outcome));
    if (written && hooks.output) (void)hooks.output(OutputStream::out, written->message + "\n");
    return written;
  }
  auto argv = detail::command_argv(entry, request);
  if (!argv) return tl::unexpected(argv.error());

  // 3. cwd: a fresh folder for this execution inside the twin's workspace, both owned by the
  //    uid the command runs as. native and bwrap: the working folder is a tmpfs inside the
  //    sandbox instead, and the workspace is mounted read-only (readable by the sandbox's group).
  const bool host_folder = sandbox.isolation() == Isolation::cwd;
  const auto run_as = sys::command_credentials(sandbox.spec());
  detail::Placement place{
      .execution_id = outcome.execution_id,
      .twin_id = request.twin_id,
      .workspace = sandbox.root_dir() / request.twin_id,
      .execution_dir = host_folder ? sandbox.root_dir() / request.twin_id / outcome.execution_id : std::filesystem::path(),
  };
  auto dir = [&]() -> Result<std::filesystem::path> {
    if (host_folder) return sys::make_execution_dir(sandbox.root_dir(), request.twin_id, outcome.execution_id, run_as);
    if (sandbox.isolation() == Isolation::native) {
      return sys::prepare_native_workspace(sandbox.root_dir(), request.twin_id, sandbox.spec().sandbox_gid);
    }
    return run_as ? sys::prepare_native_workspace(sandbox.root_dir(), request.twin_id, run_as->gid)
                  : sys::make_twin_dir(sandbox.root_dir(), request.twin_id);
  }();
  if (!dir) return tl::unexpected(dir.error());
  // The folder goes after the response: its processes are dead, nothing waits for it.
  const auto cleanup = [&] {
    if (host_folder) sys::Janitor::instance().post([dir = place.execution_dir] { (void)sys::remove_tree(dir); });
  };

  // 4. Resolve a bare program name in the sandbox's PATH, so "not found" is 127 in every mode.
  std::string& program = argv->front();
  if (program.find('/') == std::string::npos) {
    const auto lookup = sys::find_program(program, detail::sandbox_path);
    using Found = sys::ProgramLookup::Found;
    if (lookup.found != Found::executable) {
      cleanup();
      return lookup.found == Found::missing
                 ? not_started(std::move(outcome), exit_not_found,
                               "program not found: " + program + " (searched " + detail::sandbox_path + ")")
                 : not_started(std::move(outcome), exit_not_executable,
                               "program not executable: " + lookup.path);
    }
    program = lookup.path;
  }

  // 5. Run it under the twin's limits (the time limit also capped by the caller's deadline),
  //    then drop its folder: what a twin keeps belongs in its workspace.
  const auto limits = limits_for(outcome.decision, request.timeout_cap);
  const auto shown_program = program;
  const auto plan = detail::make_launch_plan(sandbox, std::move(*argv), place, limits, outcome.decision.network);
  if (hooks.started) hooks.started(outcome);
  auto result = parts_.spawner->spawn(plan, std::move(stop), hooks.output);
  cleanup();
  if (!result) return tl::unexpected(result.error());
  return finish(std::move(outcome), std::move(*result), shown_program, plan.limits);
}

}  // namespace pagi_exec
