from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EgressSummary(_message.Message):
    __slots__ = ["bytes_down", "bytes_up", "connections_allowed", "connections_refused"]
    BYTES_DOWN_FIELD_NUMBER: _ClassVar[int]
    BYTES_UP_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    bytes_down: int
    bytes_up: int
    connections_allowed: int
    connections_refused: int
    def __init__(self, connections_allowed: _Optional[int] = ..., connections_refused: _Optional[int] = ..., bytes_up: _Optional[int] = ..., bytes_down: _Optional[int] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ["finished", "started", "stderr", "stdout"]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    finished: ExecutionFinished
    started: ExecutionStarted
    stderr: OutputChunk
    stdout: OutputChunk
    def __init__(self, started: _Optional[_Union[ExecutionStarted, _Mapping]] = ..., stdout: _Optional[_Union[OutputChunk, _Mapping]] = ..., stderr: _Optional[_Union[OutputChunk, _Mapping]] = ..., finished: _Optional[_Union[ExecutionFinished, _Mapping]] = ...) -> None: ...

class ExecutionFinished(_message.Message):
    __slots__ = ["allowed", "cpu_time_ms", "duration_ms", "egress", "execution_id", "exit_code", "isolation", "limit_hit", "peak_memory_bytes", "policy_rule", "reason", "signal", "stderr_truncated", "stdout_truncated", "success", "timed_out", "workspace_bytes", "workspace_quota_bytes"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    EGRESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_HIT_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    POLICY_RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    cpu_time_ms: int
    duration_ms: int
    egress: EgressSummary
    execution_id: str
    exit_code: int
    isolation: str
    limit_hit: str
    peak_memory_bytes: int
    policy_rule: str
    reason: str
    signal: int
    stderr_truncated: bool
    stdout_truncated: bool
    success: bool
    timed_out: bool
    workspace_bytes: int
    workspace_quota_bytes: int
    def __init__(self, execution_id: _Optional[str] = ..., allowed: bool = ..., success: bool = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., reason: _Optional[str] = ..., policy_rule: _Optional[str] = ..., timed_out: bool = ..., limit_hit: _Optional[str] = ..., duration_ms: _Optional[int] = ..., cpu_time_ms: _Optional[int] = ..., peak_memory_bytes: _Optional[int] = ..., stdout_truncated: bool = ..., stderr_truncated: bool = ..., isolation: _Optional[str] = ..., workspace_bytes: _Optional[int] = ..., workspace_quota_bytes: _Optional[int] = ..., egress: _Optional[_Union[EgressSummary, _Mapping]] = ...) -> None: ...

class ExecutionLimits(_message.Message):
    __slots__ = ["cpu_time_s", "file_size_bytes", "max_processes", "memory_bytes", "output_bytes", "output_lines", "timeout_ms", "workspace_bytes"]
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LINES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpu_time_s: int
    file_size_bytes: int
    max_processes: int
    memory_bytes: int
    output_bytes: int
    output_lines: int
    timeout_ms: int
    workspace_bytes: int
    def __init__(self, timeout_ms: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., max_processes: _Optional[int] = ..., cpu_time_s: _Optional[int] = ..., file_size_bytes: _Optional[int] = ..., output_bytes: _Optional[int] = ..., output_lines: _Optional[int] = ..., workspace_bytes: _Optional[int] = ...) -> None: ...

class ExecutionRecord(_message.Message):
    __slots__ = ["allowed", "arg_count", "args", "args_truncated", "command", "egress", "execution_id", "exit_code", "finished_at", "isolation", "job_id", "limit_hit", "message", "namespace", "node", "output_dropped", "policy_rule", "ran", "reason", "signal", "started_at", "stderr_logs", "stderr_truncated", "stdout_logs", "stdout_truncated", "timed_out", "twin_id"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ARGS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ARG_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    EGRESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_HIT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DROPPED_FIELD_NUMBER: _ClassVar[int]
    POLICY_RULE_FIELD_NUMBER: _ClassVar[int]
    RAN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STDERR_LOGS_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_LOGS_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    TWIN_ID_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    arg_count: int
    args: _containers.RepeatedScalarFieldContainer[str]
    args_truncated: bool
    command: str
    egress: EgressSummary
    execution_id: str
    exit_code: int
    finished_at: str
    isolation: str
    job_id: str
    limit_hit: str
    message: str
    namespace: str
    node: str
    output_dropped: bool
    policy_rule: str
    ran: bool
    reason: str
    signal: int
    started_at: str
    stderr_logs: _containers.RepeatedScalarFieldContainer[str]
    stderr_truncated: bool
    stdout_logs: _containers.RepeatedScalarFieldContainer[str]
    stdout_truncated: bool
    timed_out: bool
    twin_id: str
    def __init__(self, execution_id: _Optional[str] = ..., twin_id: _Optional[str] = ..., job_id: _Optional[str] = ..., namespace: _Optional[str] = ..., command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., allowed: bool = ..., reason: _Optional[str] = ..., policy_rule: _Optional[str] = ..., ran: bool = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., timed_out: bool = ..., limit_hit: _Optional[str] = ..., isolation: _Optional[str] = ..., message: _Optional[str] = ..., stdout_logs: _Optional[_Iterable[str]] = ..., stderr_logs: _Optional[_Iterable[str]] = ..., output_dropped: bool = ..., started_at: _Optional[str] = ..., finished_at: _Optional[str] = ..., stdout_truncated: bool = ..., stderr_truncated: bool = ..., arg_count: _Optional[int] = ..., args_truncated: bool = ..., node: _Optional[str] = ..., egress: _Optional[_Union[EgressSummary, _Mapping]] = ...) -> None: ...

class ExecutionRequest(_message.Message):
    __slots__ = ["args", "command", "job_id", "metadata", "namespace", "twin_id"]
    class MetadataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARGS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TWIN_ID_FIELD_NUMBER: _ClassVar[int]
    args: _containers.RepeatedScalarFieldContainer[str]
    command: str
    job_id: str
    metadata: _containers.ScalarMap[str, str]
    namespace: str
    twin_id: str
    def __init__(self, command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., twin_id: _Optional[str] = ..., job_id: _Optional[str] = ..., namespace: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ExecutionResponse(_message.Message):
    __slots__ = ["cpu_time_ms", "duration_ms", "egress", "execution_id", "exit_code", "isolation", "limit_hit", "message", "peak_memory_bytes", "policy_rule", "signal", "stderr_logs", "stderr_truncated", "stdout_logs", "stdout_truncated", "success", "timed_out", "workspace_bytes", "workspace_quota_bytes"]
    CPU_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    EGRESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_HIT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    POLICY_RULE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STDERR_LOGS_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_LOGS_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpu_time_ms: int
    duration_ms: int
    egress: EgressSummary
    execution_id: str
    exit_code: int
    isolation: str
    limit_hit: str
    message: str
    peak_memory_bytes: int
    policy_rule: str
    signal: int
    stderr_logs: _containers.RepeatedScalarFieldContainer[str]
    stderr_truncated: bool
    stdout_logs: _containers.RepeatedScalarFieldContainer[str]
    stdout_truncated: bool
    success: bool
    timed_out: bool
    workspace_bytes: int
    workspace_quota_bytes: int
    def __init__(self, success: bool = ..., exit_code: _Optional[int] = ..., stdout_logs: _Optional[_Iterable[str]] = ..., stderr_logs: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., execution_id: _Optional[str] = ..., stdout_truncated: bool = ..., stderr_truncated: bool = ..., signal: _Optional[int] = ..., timed_out: bool = ..., duration_ms: _Optional[int] = ..., isolation: _Optional[str] = ..., policy_rule: _Optional[str] = ..., limit_hit: _Optional[str] = ..., cpu_time_ms: _Optional[int] = ..., peak_memory_bytes: _Optional[int] = ..., workspace_bytes: _Optional[int] = ..., workspace_quota_bytes: _Optional[int] = ..., egress: _Optional[_Union[EgressSummary, _Mapping]] = ...) -> None: ...

class ExecutionStarted(_message.Message):
    __slots__ = ["execution_id", "isolation", "limits", "policy_rule"]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    POLICY_RULE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    isolation: str
    limits: ExecutionLimits
    policy_rule: str
    def __init__(self, execution_id: _Optional[str] = ..., isolation: _Optional[str] = ..., limits: _Optional[_Union[ExecutionLimits, _Mapping]] = ..., policy_rule: _Optional[str] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ["execution_id"]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    def __init__(self, execution_id: _Optional[str] = ...) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ["message", "status", "version"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    message: str
    status: str
    version: str
    def __init__(self, status: _Optional[str] = ..., version: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ["job_id", "outcome", "page_size", "page_token", "twin_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TWIN_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    outcome: str
    page_size: int
    page_token: str
    twin_id: str
    def __init__(self, twin_id: _Optional[str] = ..., job_id: _Optional[str] = ..., outcome: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ["executions", "next_page_token"]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[ExecutionRecord]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[ExecutionRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ["data"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class PolicyDecision(_message.Message):
    __slots__ = ["allow_domains", "allowed", "deny_domains", "limits", "network", "network_mode", "notes", "policy_revision", "reason", "rule"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    DENY_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MODE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    allow_domains: _containers.RepeatedScalarFieldContainer[str]
    allowed: bool
    deny_domains: _containers.RepeatedScalarFieldContainer[str]
    limits: ExecutionLimits
    network: bool
    network_mode: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    policy_revision: str
    reason: str
    rule: str
    def __init__(self, allowed: bool = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., limits: _Optional[_Union[ExecutionLimits, _Mapping]] = ..., network: bool = ..., notes: _Optional[_Iterable[str]] = ..., policy_revision: _Optional[str] = ..., network_mode: _Optional[str] = ..., allow_domains: _Optional[_Iterable[str]] = ..., deny_domains: _Optional[_Iterable[str]] = ...) -> None: ...
