"""Logging of the server's own events (rotations, failures) next to the HTTP server's,
and of every request (``federation.access``), one JSON object a line.

No line carries a secret: every handler in the process gets :data:`REDACT`, which
replaces whatever has a secret's shape in a record's message and traceback with
``[redacted]`` (:mod:`federation.domain.secret_shapes`) before any handler formats it.
"""

from __future__ import annotations

import logging

from federation.domain.secret_shapes import redact
from federation.observability.json_logs import JsonLinesHandler

ACCESS_LOGGER = "federation.access"
_TRACEBACKS = logging.Formatter()  # the standard rendering, for records not yet formatted


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack in place, secrets redacted; lets
    every record through. A record is shared by the handlers it reaches, so the first
    one that filters it protects them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "access", None) is not None:
            return True  # NOTE: the access log redacts its fields as it makes them
        try:
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        except Exception:
            return True  # NOTE: the handler reports a record it cannot format, as ever
        record.msg, record.args = redact(message), ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


REDACT = RedactingFilter()


def configure(level: int = logging.INFO) -> None:
    """Send ``federation.*`` records to stderr, once; never configures the root logger,
    but redacts secrets in every handler configured so far (the HTTP server's too)."""
    logger = logging.getLogger("federation")
    if logger.handlers:
        redact_everywhere()
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False  # JSON only, not also the text line above
    access.addHandler(JsonLinesHandler(2))  # stderr
    redact_everywhere()


def redact_everywhere() -> None:
    """:data:`REDACT` on every handler of every logger in the process, root included
    (once each)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # NOTE: placeholders have none
            handler.addFilter(REDACT)
