"""One line per request on the ``federation.access`` logger, JSON on stderr.

Method, path, status, latency, the worker's pid, the trace id, and who and which run the
request was about when the code that answered it learned that. Never a header, a body,
a query string, a token or a key: the path is the only part of the request written, and
``scope["path"]`` excludes the query (which may carry secrets). A secret sent where it
does not belong (an API key as a run id, in the path) is written as ``[redacted]``, in
every field (:mod:`federation.domain.secret_shapes`).
"""

from __future__ import annotations

import logging
import os
import time

from starlette.types import Scope

from federation.api.middleware.observe import KEY_ID, PRINCIPAL, RUN_ID, TRACE_ID, noted
from federation.domain.secret_shapes import redact
from federation.observability.logs import ACCESS_LOGGER

# NOTE: paths are chosen by clients; a bound keeps every line one atomic pipe write
MAX_PATH = 256


class AccessLog:
    """The access-log observer: hands one record per request to ``logger``."""

    def __init__(self, logger: logging.Logger | None = None, *, pid: int | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.pid = pid if pid is not None else os.getpid()  # built in the worker process

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        state = noted(scope)
        fields: dict[str, object] = {
            "method": scope["method"][:16],
            # NOTE: redacted before it is cut, so that no part of a secret survives
            "path": redact(scope["path"])[:MAX_PATH],
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "pid": self.pid,
            "trace_id": state.get(TRACE_ID),
        }
        for name in (PRINCIPAL, KEY_ID):
            value = state.get(name)
            if value is not None:
                fields[name] = value
        # the run a request named: in its body (noted) or in its path (/runs/{run_id})
        run_id = state.get(RUN_ID) or scope.get("path_params", {}).get(RUN_ID)
        if run_id is not None:
            fields[RUN_ID] = run_id
        for name, value in fields.items():
            if isinstance(value, str):
                fields[name] = redact(value)
        self.logger.handle(AccessRecord(self.logger.name, fields, self.pid))


class AccessRecord(logging.LogRecord):
    """The record of one request, made without the general constructor's look-ups (the
    caller's frame, thread and process names): those cost more than writing the line."""

    def __init__(self, name: str, fields: dict[str, object], pid: int) -> None:
        now = time.time()
        self.name = name
        self.msg = "request"
        self.args = ()
        self.levelno = logging.INFO
        self.levelname = "INFO"
        self.pathname = __file__
        self.filename = "access_log.py"
        self.module = "access_log"
        self.lineno = 0
        self.funcName = "finished"
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.created = now
        self.msecs = (now - int(now)) * 1000
        self.relativeCreated = 0.0
        self.thread = None
        self.threadName = None
        self.processName = None
        self.process = pid
        self.taskName = None
        self.access = fields
