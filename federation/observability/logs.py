"""Logging of the server's own events (rotations, failures) next to the HTTP server's,
and of every request (``federation.access``), one JSON object a line."""

from __future__ import annotations

import logging

from federation.observability.json_logs import JsonLinesHandler

ACCESS_LOGGER = "federation.access"


def configure(level: int = logging.INFO) -> None:
    """Send ``federation.*`` records to stderr, once; never configures the root logger."""
    logger = logging.getLogger("federation")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False  # JSON only, not also the text line above
    access.addHandler(JsonLinesHandler(2))  # stderr
