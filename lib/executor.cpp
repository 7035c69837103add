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
#include "workspace_meter.hpp"

namespace pagi_exec {
namespace {

using Clock = std::chrono::system_clock;

// A program name as the messages quote it. A client's name may be as long as the request allows
// (1 MiB), and the message goes to the answer, the history's stderr and the audit log: a cheap
// call that starts nothing must not write a megabyte to each.
constexpr std::size_t max_quoted_program_bytes = 256;

std::string quoted_program(const std::string& program) {
  bool cut = false;
  auto quoted = bounded_text(program, max_quoted_program_bytes, cut);
  if (cut) quoted += "... (" + std::to_string(program.size()) + " bytes)";
  return quoted;
}

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
  if (twin.workspace_bytes) limits.workspace_bytes = lower(limits.workspace_bytes, *twin.workspace_bytes);
  if (timeout_cap && *timeout_cap < limits.timeout) limits.timeout = std::max(*timeout_cap, std::chrono::milliseconds(1));
  return limits;
}

namespace {

// A request that was not run: refused by the policy (exit 1; the wire adds "Policy violation: "),
// or a call that cannot run as asked (a usage error, exit 2, the reason on stderr).
Outcome not_run(Outcome outcome) {
  outcome.message = outcome.decision.reason;
  if (!outcome.decision.is_invalid_request()) {
    outcome.exit_code = 1;
    return outcome;
  }
  outcome.exit_code = exit_usage;
  outcome.err.lines = {outcome.message};
  outcome.err.total_bytes = outcome.message.size() + 1;
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

// The original service's sentence first, word for word (a client may read elapsed_ms out of it),
// then what it did not say: the signal that ended the command.
std::string describe_exit(const ProcessResult& result) {
  const auto ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(result.elapsed).count());
  std::string text = result.exit_code == 0
                         ? "Execution completed (elapsed_ms=" + ms + ")"
                         : "Execution failed (exit_code=" + std::to_string(result.exit_code) + ", elapsed_ms=" + ms + ")";
  if (result.signal != 0) {
    const char* name = ::sigabbrev_np(result.signal);
    text += "; killed by signal " + std::to_string(result.signal) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return text;
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
  outcome.egress = result.egress;  // even when the command never ran: the proxy was set up for it
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
    const std::string limit = outcome.limit_hit == LimitHit::none ? "" : std::string("; ") + to_string(outcome.limit_hit);
    outcome.message = describe_exit(result) + limit + describe_truncation("stdout", result.out) +
                      describe_truncation("stderr", result.err);
  }
  outcome.out = std::move(result.out);
  outcome.err = std::move(result.err);
  return outcome;
}

// Whether a command under `isolation` can write its twin's workspace on the host: cwd (the
// host folder itself) can; bwrap and native mount it read-only. Such runs are refused while the workspace is over its quota and measured when
// they end, because nothing bounds what they write while they run.
bool commands_write_workspace(Isolation isolation) noexcept {
  switch (isolation) {
    case Isolation::cwd: return true;
    case Isolation::bwrap:
    case Isolation::native: return false;
  }
  return true;
}

// What a run that could write the workspace left there: reported, and over the quota, noted in the
// message, except a timeout's: clients match its exact timeout_message.
void note_workspace(Outcome& outcome, const Result<WorkspaceUsage>& usage) {
  if (outcome.timed_out) {
    if (usage) outcome.workspace = *usage;
    return;
  }
  if (!usage) {
    outcome.message += "; " + usage.error().message() + " (commands that can write it are refused until it can be)";
    return;
  }
  outcome.workspace = *usage;
  if (!usage->over_quota()) return;
  if (outcome.limit_hit == LimitHit::none) outcome.limit_hit = LimitHit::workspace_quota;
  outcome.message += "; " + describe_over_quota(*usage);
}

// The refusal of a command that could write a workspace that is over its quota, or that cannot
// be measured; nullopt when it may start.
std::optional<Outcome> quota_refusal(detail::WorkspaceMeter& workspaces, const std::string& twin, std::uint64_t quota,
                                     const Outcome& outcome) {
  const auto before = workspaces.usage(twin, quota);
  if (!before) {
    return detail::refused_by_quota(outcome, before.error().message() +
                                                 "; commands that can write the workspace are refused until it can "
                                                 "be measured");
  }
  if (!before->over_quota()) return std::nullopt;
  auto refused = detail::refused_by_quota(outcome, describe_over_quota(*before));
  refused.workspace = *before;
  return refused;
}

// cwd: a fresh folder for this execution inside the twin's workspace, both owned by the uid the
// command runs as. native and bwrap: the working folder is a tmpfs inside the sandbox instead,
// and the workspace is mounted read-only (readable by the sandbox's group).
Result<detail::Placement> place_execution(const Sandbox& sandbox, const std::string& twin,
                                          const std::string& execution_id) {
  const bool host_folder = sandbox.isolation() == Isolation::cwd;
  const auto run_as = sys::command_credentials(sandbox.spec());
  detail::Placement place{
      .execution_id = execution_id,
      .twin_id = twin,
      .workspace = sandbox.root_dir() / twin,
      .execution_dir = host_folder ? sandbox.root_dir() / twin / execution_id : std::filesystem::path(),
  };
  // bwrap's reader is the run gid (TOOLS_RUN_AS_ROOT: the server's own root, gid 0).
  const std::uint32_t reader_gid = sandbox.isolation() == Isolation::native ? sys::native_workspace_group(sandbox.spec())
                                   : run_as                                    ? run_as->gid
                                                                               : 0;
  auto dir = host_folder ? sys::make_execution_dir(sandbox.root_dir(), twin, execution_id, run_as)
                         : sys::prepare_readonly_workspace(sandbox.root_dir(), twin, reader_gid);
  return dir.map([&](const std::filesystem::path&) { return place; });
}

// The sandbox root on disk, before the first run: 0711, so other users may not list the twins'
// folders; reachable by the uid cwd and bwrap commands drop to; in native, twin folders already
// there given the permissions native runs expect (close_native_workspaces).
Result<void> prepare_root(const Sandbox& sandbox) {
  if (auto made = sys::ensure_directory(sandbox.root_dir(), 0711); !made) return made;
  if (sandbox.isolation() == Isolation::native) {
    sys::close_native_workspaces(sandbox.root_dir(), sys::native_workspace_group(sandbox.spec()));
    return {};
  }
  const auto run_as = sys::command_credentials(sandbox.spec());
  return run_as ? sys::check_reachable(sandbox.root_dir(), *run_as) : Result<void>{};
}

}  // namespace

Result<Executor> Executor::open(ExecutorParts parts) {
  if (!parts.spawner && parts.sandbox.isolation() == Isolation::native) {
    // The proxy's connection records go to the audit log, each before its run's "finished".
    EgressRecorder recorder;
    if (parts.audit) recorder = [audit = parts.audit](const EgressConnection& c) { (void)audit->egress(c); };
    auto native = make_native_spawner(parts.sandbox, std::move(recorder));
    if (!native) return error_of(native);
    parts.spawner = std::move(*native);
  }
  if (!parts.spawner) parts.spawner = make_process_spawner();
  if (!parts.history) parts.history = std::make_shared<History>();
  if (auto ready = prepare_root(parts.sandbox); !ready) return error_of(ready);
  auto workspaces = std::make_shared<detail::WorkspaceMeter>(parts.sandbox.root_dir());
  return Executor(std::move(parts), std::move(workspaces), std::make_shared<sys::Janitor>());
}

void Executor::wait_for_cleanup() const {
  parts_.spawner->wait_for_cleanup();
  cleanup_->drain();
}

Decision Executor::check(const Request& request) const {
  return judge(parts_.policy, parts_.catalog, parts_.request_limits, request);
}

Result<Outcome> Executor::run(const Request& request, std::stop_token stop, const RunHooks& hooks) const {
  const auto started = Clock::now();
  const auto t0 = std::chrono::steady_clock::now();
  auto outcome = fresh_outcome();
  // 1. One normalised form, judged and run: a request that has none (a NUL byte, too big) is
  //    answered here, before the policy or anything else reads it; so is an allowed call its tool
  //    cannot take (Decision::invalid_request).
  const auto command = Command::make(request, parts_.catalog, parts_.request_limits);
  outcome.decision = judge(parts_.policy, command, request);
  const auto decided = std::chrono::steady_clock::now();
  if (command && hooks.decided) hooks.decided(*command, outcome.decision);
  // 2. A refusal costs nothing; an allowed request needs a slot first (its twin's share, the
  //    total, the memory budget), or it ends here, before anything is recorded or created.
  auto slot = admit(request, outcome.decision);  // held until run() returns
  if (!slot) return error_of(slot);
  // 3. The decision is on record before anything runs; a required audit log that cannot record
  //    it means nothing runs.
  if (auto audited = audit_decision(request, outcome); !audited) {
    remember(request, std::move(outcome), started);
    return error_of(audited);
  }
  if (!outcome.decision.allowed) return remember(request, not_run(std::move(outcome)), started);
  // 4. Run it; record how it ended, whatever happened. What the tool finds wrong with its
  //    arguments only while running (file_write's target is a folder) is a usage error too.
  auto result = run_allowed(*command, request, outcome, std::move(stop), hooks, decided);
  if (!result && result.error().code == Errc::invalid_request) {
    result = not_started(outcome, exit_usage, result.error().message());
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  if (result) result->elapsed = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
  Outcome ended = result ? *result : outcome;
  if (!result) ended.message = result.error().message();  // the decision stands, nothing ran
  if (parts_.audit) (void)parts_.audit->finished(request, ended);  // it ran: too late to refuse
  remember(request, std::move(ended), started);
  return result;
}

// run()'s steps 1 and 3 for a request that will not run; the record is not waited for.
bool Executor::refuse_then(const Request& request, Answered done) const {
  const auto started = Clock::now();
  auto outcome = fresh_outcome();
  outcome.decision = judge(parts_.policy, Command::make(request, parts_.catalog, parts_.request_limits), request);
  if (outcome.decision.allowed) return false;
  auto audited = audit_decision(request, outcome);
  if (audited) outcome = not_run(std::move(outcome));
  auto record = record_of(request, outcome, started);
  Result<Outcome> answer = audited ? Result<Outcome>(std::move(outcome)) : error_of(audited);
  parts_.history->record_then(std::move(record),
                              [answer = std::move(answer), done = std::move(done)](Result<void> /*kept*/) mutable {
                                done(std::move(answer));  // a record not kept is in the store's health()
                              });
  return true;
}

Outcome Executor::fresh_outcome() const {
  Outcome outcome;
  outcome.execution_id = sys::new_uuid_v4();
  outcome.isolation = parts_.sandbox.isolation();
  outcome.policy_revision = parts_.policy.revision();
  return outcome;
}

Result<std::optional<Admission::Slot>> Executor::admit(const Request& request, const Decision& decision) const {
  if (!decision.allowed || !parts_.admission) return std::optional<Admission::Slot>();
  return parts_.admission
      ->admit(request.twin_id, limits_for(decision, request.timeout_cap).memory_bytes, decision.limits.max_running)
      .map([](Admission::Slot slot) { return std::optional<Admission::Slot>(std::move(slot)); });
}

Result<void> Executor::audit_decision(const Request& request, Outcome& outcome) const {
  if (!parts_.audit) return {};
  auto recorded = parts_.audit->decided(request, outcome);
  if (recorded || !parts_.audit_required) return {};
  outcome.message = "audit log unavailable, nothing was run: " + recorded.error().message();
  return fail(Errc::audit_unavailable, outcome.message);
}

ExecutionRecord Executor::record_of(const Request& request, const Outcome& outcome, Clock::time_point started) const {
  auto record = make_record(request, outcome, started, Clock::now());
  record.node = parts_.node;
  return record;
}

Outcome Executor::remember(const Request& request, Outcome outcome, Clock::time_point started) const {
  // A store that cannot take it says so in its health(); the answer does not depend on it.
  (void)parts_.history->record(record_of(request, outcome, started));
  return outcome;
}

Result<Outcome> Executor::run_allowed(const Command& command, const Request& request, Outcome outcome,
                                      std::stop_token stop, const RunHooks& hooks,
                                      std::chrono::steady_clock::time_point decided) const {
  // 1. The twin id becomes a folder name: it must be one safe path component.
  if (auto valid = validate_twin_id(command.twin_id()); !valid) return error_of(valid);

  // 2. What the tool means: a built-in, a tool without a program, or a program (the shell
  //    bridge is /bin/sh), found or not.
  switch (command.kind()) {
    case ToolKind::unavailable: return not_started(std::move(outcome), exit_not_found, command.note());
    case ToolKind::file_write: {
      if (hooks.started) hooks.started(outcome);
      const auto quota = limits_for(outcome.decision).workspace_bytes;
      // cwd: the file belongs to the uid the twin's commands run as, so they can change it later.
      // Other modes mount the workspace read-only: its files stay the server's.
      const auto owner = parts_.sandbox.isolation() == Isolation::cwd ? sys::command_credentials(parts_.sandbox.spec())
                                                                       : std::nullopt;
      auto written = detail::run_file_write(*workspaces_, request, quota, owner, std::move(outcome));
      if (written && hooks.output) {
        (void)hooks.output(written->ran ? OutputStream::out : OutputStream::err, written->message + "\n");
      }
      return written;
    }
    case ToolKind::shell_bridge:
    case ToolKind::program: break;
  }
  if (command.argv().empty()) return fail(Errc::invalid_request, why_not_call(command, request));  // judge() said so
  const std::string& program = command.argv().front();
  switch (command.lookup()) {
    case ProgramLookup::missing:
      return not_started(std::move(outcome), exit_not_found,
                         "program not found: " + quoted_program(program) + " (searched " + detail::sandbox_path + ")");
    case ProgramLookup::not_executable:
      return not_started(std::move(outcome), exit_not_executable, "program not executable: " + quoted_program(program));
    case ProgramLookup::as_given:
    case ProgramLookup::found: break;
  }
  return run_command(command, request, std::move(outcome), std::move(stop), hooks, decided);
}

Result<Outcome> Executor::run_command(const Command& command, const Request& request, Outcome outcome,
                                      std::stop_token stop, const RunHooks& hooks,
                                      std::chrono::steady_clock::time_point decided) const {
  const Sandbox& sandbox = parts_.sandbox;
  const std::string& twin = command.twin_id();
  const auto limits = limits_for(outcome.decision, request.timeout_cap);

  // 1. A command that can write the workspace does not start while it is over its quota.
  const std::uint64_t quota = commands_write_workspace(sandbox.isolation()) ? limits.workspace_bytes : 0;
  if (quota != 0) {
    if (auto refused = quota_refusal(*workspaces_, twin, quota, outcome)) return std::move(*refused);
  }

  // 2. Its folders: see place_execution.
  const bool host_folder = sandbox.isolation() == Isolation::cwd;
  const auto placed = place_execution(sandbox, twin, outcome.execution_id);
  if (!placed) return error_of(placed);
  const detail::Placement& place = *placed;

  // 3. Run exactly the judged argv under the twin's limits (the time limit also capped by the
  //    caller's deadline), measure what it left in the workspace, then drop its folder: what a
  //    twin keeps belongs in its workspace.
  const auto plan = detail::make_launch_plan(sandbox, command, place, limits, outcome.decision);
  if (hooks.started) hooks.started(outcome);
  if (quota != 0) workspaces_->command_started(twin, outcome.execution_id);
  auto result = parts_.spawner->spawn(plan, std::move(stop), hooks.output);
  // Its processes are dead: its folder goes. Most are left empty, and one rmdir removes those
  // at once, so the twin's folder holds only running executions' folders and the walk below does
  // not list (and an ext4 directory does not grow by) a backlog of removals. A folder the command
  // filled is removed after the response.
  const bool folder_gone = host_folder && sys::remove_if_empty(place.execution_dir);
  if (folder_gone && quota != 0) workspaces_->working_folder_removed(twin, outcome.execution_id);
  std::optional<Result<WorkspaceUsage>> after;
  if (quota != 0) after = workspaces_->command_finished(twin, quota);
  if (host_folder && !folder_gone) {
    auto meter = quota != 0 ? workspaces_ : nullptr;
    cleanup_->post([dir = place.execution_dir, meter, twin, id = outcome.execution_id] {
      (void)sys::remove_tree(dir);
      if (meter) meter->working_folder_removed(twin, id);
    });
  }
  if (!result) return error_of(result);
  const auto running_since = result->running_since;
  auto finished = finish(std::move(outcome), std::move(*result), command.argv().front(), plan.limits);
  if (finished.ran && running_since && *running_since > decided) {
    finished.startup = std::chrono::duration_cast<std::chrono::microseconds>(*running_since - decided);
  }
  if (after) note_workspace(finished, *after);
  return finished;
}

std::vector<TwinWorkspace> Executor::workspaces() const { return workspaces_->snapshot(); }

}  // namespace pagi_exec
