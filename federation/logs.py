"""Logging of the server's own events (rotations, failures) next to the HTTP server's."""

from __future__ import annotations

import logging


def configure(level: int = logging.INFO) -> None:
    """Send ``federation.*`` records to stderr, once; never configures the root logger."""
    logger = logging.getLogger("federation")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
