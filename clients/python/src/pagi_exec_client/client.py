# SPDX-License-Identifier: Apache-2.0
"""Client: one channel to a tools-server and a typed method per RPC of ToolExecutorService."""
from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

import grpc
from google.protobuf import empty_pb2

from .proto import tools_pb2, tools_pb2_grpc
from .errors import PagiExecError
from .results import (Chunk, Decision, ExecutionRecord, ExecutionResult, Health, HistoryPage, Started,
                      StreamResult)

DEFAULT_TARGET = "127.0.0.1:50054"
Pem = Union[bytes, str, "os.PathLike[str]"]  # PEM bytes, or the path of a PEM file


def _pem(value: Optional[Pem]) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


class Client:
    """A connection to a tools-server; use it as a context manager (or call close()).

    target: "host:port" or "unix:/path". token: sent as "authorization: Bearer <token>" (the server's
    TOOLS_AUTH=token). TLS is on when tls is True or any certificate is given: root_certificates
    verifies the server (None: grpc's default roots), certificate_chain and private_key prove the
    client (TOOLS_AUTH=mtls). Each is PEM bytes or a file path. timeout is every call's deadline in
    seconds (None: none); a deadline shorter than a command's time limit becomes its time limit.
    Every method raises PagiExecError when the call fails with a gRPC status.
    """

    def __init__(self, target: str = DEFAULT_TARGET, *, token: Optional[str] = None, tls: bool = False,
                 root_certificates: Optional[Pem] = None, certificate_chain: Optional[Pem] = None,
                 private_key: Optional[Pem] = None, timeout: Optional[float] = 60.0,
                 options: Sequence[Tuple[str, Any]] = ()) -> None:
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("certificate_chain and private_key go together (mutual TLS)")
        if tls or root_certificates is not None or certificate_chain is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=_pem(root_certificates),
                                                       private_key=_pem(private_key),
                                                       certificate_chain=_pem(certificate_chain))
            self._channel = grpc.secure_channel(target, credentials, options=list(options))
        else:
            self._channel = grpc.insecure_channel(target, options=list(options))
        # grpc_python_plugin writes no type hints; the wrapper's methods carry them.
        self._stub = tools_pb2_grpc.ToolExecutorServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata: List[Tuple[str, str]] = [("authorization", f"Bearer {token}")] if token else []
        self._timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The channel, for other stubs on the same connection (pagi_exec_client.proto, grpc.health.v1)."""
        return self._channel

    def close(self) -> None:
        """Closes the channel; calls in flight end with CANCELLED."""
        self._channel.close()

    def run(self, command: str, args: Sequence[str] = (), twin_id: str = "", *, job_id: str = "",
            namespace: str = "", metadata: Optional[Mapping[str, str]] = None,
            timeout: Optional[float] = None) -> ExecutionResult:
        """Runs a command and waits for its whole output (RequestExecution)."""
        request = _request(command, args, twin_id, job_id, namespace, metadata)
        return ExecutionResult.from_proto(self._call(self._stub.RequestExecution, request, timeout))

    def stream(self, command: str, args: Sequence[str] = (), twin_id: str = "", *,
               on_chunk: Optional[Callable[[Chunk], None]] = None,
               on_started: Optional[Callable[[Started], None]] = None, job_id: str = "", namespace: str = "",
               metadata: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> StreamResult:
        """Runs a command, calling on_chunk with each piece of output as it comes (StreamExecution).

        Chunks arrive in the order the command wrote them; the client keeps none of them. An exception
        raised by a callback cancels the call (the server kills the command) and propagates.
        """
        request = _request(command, args, twin_id, job_id, namespace, metadata)
        call = self._stub.StreamExecution(request, timeout=self._deadline(timeout), metadata=self._metadata)
        started: Optional[Started] = None
        try:
            for event in call:
                kind = event.WhichOneof("event")
                if kind == "started":
                    started = Started.from_proto(event.started)
                    if on_started is not None:
                        on_started(started)
                elif kind == "stdout" or kind == "stderr":
                    if on_chunk is not None:
                        on_chunk(Chunk(stream=kind, data=getattr(event, kind).data))
                elif kind == "finished":
                    return StreamResult.from_proto(event.finished, started)
        except grpc.RpcError as error:
            raise PagiExecError.from_rpc_error(error) from None
        except BaseException:
            call.cancel()
            raise
        raise PagiExecError(grpc.StatusCode.UNKNOWN, "the stream ended without a finished event")

    def check(self, command: str, args: Sequence[str] = (), twin_id: str = "", *, job_id: str = "",
              namespace: str = "", metadata: Optional[Mapping[str, str]] = None,
              timeout: Optional[float] = None) -> Decision:
        """What the policy decides for this request; runs and creates nothing (CheckPolicy)."""
        request = _request(command, args, twin_id, job_id, namespace, metadata)
        return Decision.from_proto(self._call(self._stub.CheckPolicy, request, timeout))

    def history(self, *, twin_id: str = "", job_id: str = "", outcome: str = "", page_size: int = 0,
                timeout: Optional[float] = None) -> Iterator[ExecutionRecord]:
        """Every remembered execution matching the filters, newest first, fetching page after page.

        outcome: "" (any), "allowed", "refused", "succeeded", "failed" or "timed_out"; page_size 0 is
        the server's 50. With authentication the server shows a twin its own executions only.
        """
        token = ""
        while True:
            page = self.history_page(twin_id=twin_id, job_id=job_id, outcome=outcome, page_size=page_size,
                                     page_token=token, timeout=timeout)
            yield from page.records
            if not page.next_page_token:
                return
            token = page.next_page_token

    def history_page(self, *, twin_id: str = "", job_id: str = "", outcome: str = "", page_size: int = 0,
                     page_token: str = "", timeout: Optional[float] = None) -> HistoryPage:
        """One page of the history (ListExecutions); pass its next_page_token to get the next."""
        request = tools_pb2.ListExecutionsRequest(twin_id=twin_id, job_id=job_id, outcome=outcome,
                                                  page_size=page_size, page_token=page_token)
        response = self._call(self._stub.ListExecutions, request, timeout)
        return HistoryPage(records=[ExecutionRecord.from_proto(r) for r in response.executions],
                           next_page_token=response.next_page_token)

    def get(self, execution_id: str, *, timeout: Optional[float] = None) -> ExecutionRecord:
        """One execution by id (GetExecution); PagiExecError NOT_FOUND when the server does not hold it."""
        request = tools_pb2.GetExecutionRequest(execution_id=execution_id)
        return ExecutionRecord.from_proto(self._call(self._stub.GetExecution, request, timeout))

    def health(self, *, timeout: Optional[float] = None) -> Health:
        """The service's HealthCheck: status, version, and a message saying how it runs."""
        return Health.from_proto(self._call(self._stub.HealthCheck, empty_pb2.Empty(), timeout))

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return self._timeout if timeout is None else timeout

    def _call(self, method: grpc.UnaryUnaryMultiCallable, request: Any, timeout: Optional[float]) -> Any:
        try:
            return method(request, timeout=self._deadline(timeout), metadata=self._metadata)
        except grpc.RpcError as error:
            raise PagiExecError.from_rpc_error(error) from None


def _request(command: str, args: Sequence[str], twin_id: str, job_id: str, namespace: str,
             metadata: Optional[Mapping[str, str]]) -> tools_pb2.ExecutionRequest:
    if isinstance(args, str):
        raise TypeError("args is a sequence of strings, not one string")
    return tools_pb2.ExecutionRequest(command=command, args=list(args), twin_id=twin_id, job_id=job_id,
                                      namespace=namespace, metadata=dict(metadata or {}))
