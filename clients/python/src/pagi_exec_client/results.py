# SPDX-License-Identifier: Apache-2.0
"""What the server answers, as plain dataclasses (field meanings: proto/tools.proto)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from .proto import tools_pb2


@dataclass(frozen=True)
class Limits:
    """The limits a run gets (0: none)."""

    timeout_ms: int
    memory_bytes: int
    max_processes: int
    cpu_time_s: int
    file_size_bytes: int
    output_bytes: int
    output_lines: int
    workspace_bytes: int

    @classmethod
    def from_proto(cls, m: tools_pb2.ExecutionLimits) -> Limits:
        return cls(timeout_ms=m.timeout_ms, memory_bytes=m.memory_bytes, max_processes=m.max_processes,
                   cpu_time_s=m.cpu_time_s, file_size_bytes=m.file_size_bytes, output_bytes=m.output_bytes,
                   output_lines=m.output_lines, workspace_bytes=m.workspace_bytes)


@dataclass(frozen=True)
class Egress:
    """A run's connections through the egress proxy (a twin with network = "egress", native)."""

    connections_allowed: int
    connections_refused: int
    bytes_up: int  # from the run to its destinations
    bytes_down: int

    @classmethod
    def from_proto(cls, m: tools_pb2.EgressSummary) -> Egress:
        return cls(connections_allowed=m.connections_allowed, connections_refused=m.connections_refused,
                   bytes_up=m.bytes_up, bytes_down=m.bytes_down)


def _egress(m) -> Optional[Egress]:
    return Egress.from_proto(m.egress) if m.HasField("egress") else None


@dataclass(frozen=True)
class ExecutionResult:
    """The answer of run() (RequestExecution).

    A refusal by policy is an answer too, not an error: success False, exit_code 1, message the
    reason, and stderr_lines[0] "Policy violation: <reason>". A mistake in the call is exit_code 2.
    """

    success: bool
    exit_code: int
    stdout_lines: List[str]
    stderr_lines: List[str]
    message: str
    execution_id: str
    stdout_truncated: bool
    stderr_truncated: bool
    signal: int
    timed_out: bool
    duration_ms: int
    isolation: str
    policy_rule: str
    limit_hit: str
    cpu_time_ms: int
    peak_memory_bytes: int
    workspace_bytes: int
    workspace_quota_bytes: int
    egress: Optional[Egress] = None  # None unless the run had the egress proxy

    @classmethod
    def from_proto(cls, m: tools_pb2.ExecutionResponse) -> ExecutionResult:
        return cls(success=m.success, exit_code=m.exit_code, stdout_lines=list(m.stdout_logs),
                   stderr_lines=list(m.stderr_logs), message=m.message, execution_id=m.execution_id,
                   stdout_truncated=m.stdout_truncated, stderr_truncated=m.stderr_truncated, signal=m.signal,
                   timed_out=m.timed_out, duration_ms=m.duration_ms, isolation=m.isolation,
                   policy_rule=m.policy_rule, limit_hit=m.limit_hit, cpu_time_ms=m.cpu_time_ms,
                   peak_memory_bytes=m.peak_memory_bytes, workspace_bytes=m.workspace_bytes,
                   workspace_quota_bytes=m.workspace_quota_bytes, egress=_egress(m))


@dataclass(frozen=True)
class Started:
    """The first event of an allowed stream(): where and under which limits the command runs."""

    execution_id: str
    isolation: str
    limits: Limits
    policy_rule: str

    @classmethod
    def from_proto(cls, m: tools_pb2.ExecutionStarted) -> Started:
        return cls(execution_id=m.execution_id, isolation=m.isolation, limits=Limits.from_proto(m.limits),
                   policy_rule=m.policy_rule)


@dataclass(frozen=True)
class Chunk:
    """Bytes the command wrote to one stream, as written: not split into lines, not capped."""

    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class StreamResult:
    """The end of a stream() (its finished event), with its started event (None for a refusal).

    exit_code is 1 for a refusal (allowed False, reason the refusal's), 2 for a call that cannot run
    as asked, 124 for a timeout, 128+N for signal N. The truncation flags are about the capture the
    server keeps for the history; the chunks were not capped.
    """

    execution_id: str
    allowed: bool
    success: bool
    exit_code: int
    signal: int
    reason: str
    policy_rule: str
    timed_out: bool
    limit_hit: str
    duration_ms: int
    cpu_time_ms: int
    peak_memory_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    isolation: str
    workspace_bytes: int
    workspace_quota_bytes: int
    started: Optional[Started]
    egress: Optional[Egress] = None  # None unless the run had the egress proxy

    @classmethod
    def from_proto(cls, m: tools_pb2.ExecutionFinished, started: Optional[Started]) -> StreamResult:
        return cls(execution_id=m.execution_id, allowed=m.allowed, success=m.success, exit_code=m.exit_code,
                   signal=m.signal, reason=m.reason, policy_rule=m.policy_rule, timed_out=m.timed_out,
                   limit_hit=m.limit_hit, duration_ms=m.duration_ms, cpu_time_ms=m.cpu_time_ms,
                   peak_memory_bytes=m.peak_memory_bytes, stdout_truncated=m.stdout_truncated,
                   stderr_truncated=m.stderr_truncated, isolation=m.isolation, workspace_bytes=m.workspace_bytes,
                   workspace_quota_bytes=m.workspace_quota_bytes, started=started, egress=_egress(m))


@dataclass(frozen=True)
class Decision:
    """The answer of check() (CheckPolicy): what the policy decides; nothing ran or was created."""

    allowed: bool
    reason: str
    rule: str
    limits: Optional[Limits]  # None when refused
    network: bool  # a run would reach a network (network_mode is not "none")
    notes: List[str]  # what the policy could not judge ("unjudgeable: ...")
    policy_revision: str
    network_mode: str = ""  # "none", "egress" (allow_domains through the proxy) or "host"; "" when refused
    allow_domains: List[str] = field(default_factory=list)
    deny_domains: List[str] = field(default_factory=list)

    @classmethod
    def from_proto(cls, m: tools_pb2.PolicyDecision) -> Decision:
        return cls(allowed=m.allowed, reason=m.reason, rule=m.rule,
                   limits=Limits.from_proto(m.limits) if m.HasField("limits") else None, network=m.network,
                   notes=list(m.notes), policy_revision=m.policy_revision, network_mode=m.network_mode,
                   allow_domains=list(m.allow_domains), deny_domains=list(m.deny_domains))


@dataclass(frozen=True)
class ExecutionRecord:
    """One request the server remembers (history(), get()), allowed or refused."""

    execution_id: str
    twin_id: str
    job_id: str
    namespace: str
    command: str
    args: List[str]  # at most 4 KiB of them: see arg_count and args_truncated
    arg_count: int
    args_truncated: bool
    allowed: bool
    reason: str
    policy_rule: str
    ran: bool
    exit_code: int
    signal: int
    timed_out: bool
    limit_hit: str
    isolation: str
    message: str
    stdout_lines: List[str]
    stderr_lines: List[str]
    output_dropped: bool  # the server no longer holds the output
    stdout_truncated: bool
    stderr_truncated: bool
    started_at: str  # RFC 3339, UTC
    finished_at: str
    egress: Optional[Egress] = None  # None unless the run had the egress proxy

    @classmethod
    def from_proto(cls, m: tools_pb2.ExecutionRecord) -> ExecutionRecord:
        return cls(execution_id=m.execution_id, twin_id=m.twin_id, job_id=m.job_id, namespace=m.namespace,
                   command=m.command, args=list(m.args), arg_count=m.arg_count, args_truncated=m.args_truncated,
                   allowed=m.allowed, reason=m.reason, policy_rule=m.policy_rule, ran=m.ran,
                   exit_code=m.exit_code, signal=m.signal, timed_out=m.timed_out, limit_hit=m.limit_hit,
                   isolation=m.isolation, message=m.message, stdout_lines=list(m.stdout_logs),
                   stderr_lines=list(m.stderr_logs), output_dropped=m.output_dropped,
                   stdout_truncated=m.stdout_truncated, stderr_truncated=m.stderr_truncated,
                   started_at=m.started_at, finished_at=m.finished_at, egress=_egress(m))


@dataclass(frozen=True)
class HistoryPage:
    """One page of history_page(): newest first; next_page_token is empty on the last page."""

    records: List[ExecutionRecord]
    next_page_token: str


@dataclass(frozen=True)
class Health:
    """The answer of health() (the service's own HealthCheck): status "healthy" or "degraded"."""

    status: str
    version: str
    message: str

    @classmethod
    def from_proto(cls, m: tools_pb2.HealthCheckResponse) -> Health:
        return cls(status=m.status, version=m.version, message=m.message)
