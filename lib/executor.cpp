// SPDX-License-Identifier: Apache-2.0
// Executor::run, the checklist: decide -> place -> resolve -> plan -> spawn -> clean up -> record.
#include "pagi_exec/executor.hpp"

#include <csignal>

#include <cstring>

#include "file_write.hpp"
#include "launch.hpp"
#include "sys/janitor.hpp"
#include "sys/random.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec {
namespace {

using Clock = std::chrono::system_clock;

}  // namespace

// The policy file's per-twin limits only lower the server's: a twin granted a day still stops at
// the server's time limit. For memory and processes 0 means "no limit", so a twin value counts
// there as long as it is the lower one.
Limits Executor::limits_for(const Decision& decision, std::optional<std::chrono::milliseconds> timeout_cap) const {
  Limits limits = parts_.sandbox.limits();
  const TwinLimits& twin = decision.limits;
  const auto lower = [](std::uint64_t server, std::uint64_t twin_value) {
    return server == 0 ? twin_value : std::min(server, twin_value);
  };
  if (twin.timeout) limits.timeout = std::min(limits.timeout, *twin.timeout);
  if (twin.memory_bytes) limits.memory_bytes = lower(limits.memory_bytes, *twin.memory_bytes);
  if (twin.max_processes) limits.max_processes = lower(limits.max_processes, *twin.max_processes);
  if (twin.output_bytes) limits.output.max_bytes = std::min(limits.output.max_bytes, *twin.output_bytes);
  if (twin.output_lines) limits.output.max_lines = std::min(limits.output.max_lines, *twin.output_lines);
  if (timeout_cap && *timeout_cap < limits.timeout) limits.timeout = std::max(*timeout_cap, std::chrono::milliseconds(1));
  return limits;
}

namespace {

// The refusal of a request Command::make would not normalise: its reason names the field.
Decision not_normalised(const Error& error) {
  return Decision{.allowed = false, .reason = error.message(), .rule = std::string(invalid_request_rule)};
}

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
  return Executor(std::move(parts));
}

void Executor::wait_for_cleanup() { sys::Janitor::instance().drain(); }

Decision Executor::check(const Request& request) const {
  const auto command = Command::make(request, parts_.catalog, parts_.request_limits);
  if (!command) return not_normalised(command.error());
  return parts_.policy.decide(*command);
}

Result<Outcome> Executor::run(const Request& request, std::stop_token stop, const RunHooks& hooks) const {
  const auto started = Clock::now();
  const auto t0 = std::chrono::steady_clock::now();
  Outcome outcome;
  outcome.execution_id = sys::new_uuid_v4();
  outcome.isolation = parts_.sandbox.isolation();
  // 1. One normalised form, judged and run: a request that has none (a NUL byte, too big) is
  //    refused here, before the policy or anything else reads it.
  const auto command = Command::make(request, parts_.catalog, parts_.request_limits);
  outcome.decision = command ? parts_.policy.decide(*command) : not_normalised(command.error());
  if (command && hooks.decided) hooks.decided(*command, outcome.decision);
  // 2. The decision is on record before anything runs; a required audit log that cannot record
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
    if (!command) return tl::unexpected(command.error());  // an argument error until issue 9
    return refusal;
  }
  // 3. Run it; record how it ended, whatever happened.
  auto result = run_allowed(*command, request, outcome, std::move(stop), hooks);
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

Result<Outcome> Executor::run_allowed(const Command& command, const Request& request, Outcome outcome,
                                      std::stop_token stop, const RunHooks& hooks) const {
  const Sandbox& sandbox = parts_.sandbox;
  // 1. The twin id becomes a folder name: it must be one safe path component.
  if (auto valid = validate_twin_id(command.twin_id()); !valid) return tl::unexpected(valid.error());

  // 2. What the tool means: a built-in, a tool without a program, or a program (the shell
  //    bridge is /bin/sh), found or not.
  switch (command.kind()) {
    case ToolKind::unavailable: return not_started(std::move(outcome), exit_not_found, command.note());
    case ToolKind::file_write: {
      if (hooks.started) hooks.started(outcome);
      auto written = detail::run_file_write(sandbox, request, std::move(outcome));
      if (written && hooks.output) (void)hooks.output(OutputStream::out, written->message + "\n");
      return written;
    }
    case ToolKind::shell_bridge:
    case ToolKind::program: break;
  }
  if (command.argv().empty()) {
    return fail(Errc::invalid_request, command.tool() + " needs args[0]: the shell command line to run with /bin/sh -c");
  }
  const std::string& program = command.argv().front();
  switch (command.lookup()) {
    case ProgramLookup::missing:
      return not_started(std::move(outcome), exit_not_found,
                         "program not found: " + program + " (searched " + detail::sandbox_path + ")");
    case ProgramLookup::not_executable:
      return not_started(std::move(outcome), exit_not_executable, "program not executable: " + program);
    case ProgramLookup::as_given:
    case ProgramLookup::found: break;
  }

  // 3. A fresh folder for this execution, inside the twin's workspace (native: a tmpfs inside
  //    the sandbox instead, and the workspace read-only).
  const std::string& twin = command.twin_id();
  const bool native = sandbox.isolation() == Isolation::native;
  detail::Placement place{
      .execution_id = outcome.execution_id,
      .twin_id = twin,
      .workspace = sandbox.root_dir() / twin,
      .execution_dir = native ? std::filesystem::path() : sandbox.root_dir() / twin / outcome.execution_id,
  };
  auto dir = native ? sys::prepare_native_workspace(sandbox.root_dir(), twin, sandbox.spec().sandbox_gid)
                    : sys::make_execution_dir(sandbox.root_dir(), twin, outcome.execution_id);
  if (!dir) return tl::unexpected(dir.error());

  // 4. Run exactly the judged argv under the twin's limits (the time limit also capped by the
  //    caller's deadline), then drop its folder: what a twin keeps belongs in its workspace.
  const auto limits = limits_for(outcome.decision, request.timeout_cap);
  const auto plan = detail::make_launch_plan(sandbox, command, place, limits, outcome.decision.network);
  if (hooks.started) hooks.started(outcome);
  auto result = parts_.spawner->spawn(plan, std::move(stop), hooks.output);
  // The folder goes after the response: its processes are dead, nothing waits for it.
  if (!native) sys::Janitor::instance().post([dir = place.execution_dir] { (void)sys::remove_tree(dir); });
  if (!result) return tl::unexpected(result.error());
  return finish(std::move(outcome), std::move(*result), program, plan.limits);
}

}  // namespace pagi_exec
