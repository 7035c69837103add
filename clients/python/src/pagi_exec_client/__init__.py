# SPDX-License-Identifier: Apache-2.0
"""A typed Python client of pagi-exec's tools-server (gRPC service tools.ToolExecutorService).

    from pagi_exec_client import Client
    with Client("127.0.0.1:50054") as client:
        result = client.run("echo", ["hello"], twin_id="twin-aegis")
"""
from .client import DEFAULT_TARGET, Client
from .errors import PagiExecError
from .results import (Chunk, Decision, Egress, ExecutionRecord, ExecutionResult, Health, HistoryPage, Limits, Started,
                      StreamResult)

__version__ = "0.1.0"
__all__ = ["DEFAULT_TARGET", "Chunk", "Client", "Decision", "Egress", "ExecutionRecord", "ExecutionResult", "Health",
           "HistoryPage", "Limits", "PagiExecError", "Started", "StreamResult"]
