# SPDX-License-Identifier: Apache-2.0
"""The one exception the client raises for a call that failed."""
from __future__ import annotations

import grpc


class PagiExecError(Exception):
    """A call that ended with a gRPC status other than OK.

    code is the status name ("UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "INVALID_ARGUMENT",
    "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", ...) and message the server's (or
    grpc's) words. A refusal by policy is not an error: it is an answer with exit code 1.
    """

    def __init__(self, status_code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{status_code.name}: {message}")
        self.status_code = status_code
        self.code: str = status_code.name
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> PagiExecError:
        # The errors grpc raises for a call are also grpc.Call objects, with code() and details().
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return cls(code, details or "")
