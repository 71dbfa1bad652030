"""The states of a run (as Oz names them), and which of them may get tokens.

Kept apart from ``runs`` so that the CLI can name them without loading the database layer.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    CLAIMED = "CLAIMED"
    INPROGRESS = "INPROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


RUNNING = frozenset({RunState.CLAIMED, RunState.INPROGRESS})
WAITING = frozenset({RunState.QUEUED, RunState.PENDING, RunState.BLOCKED})
FINISHED = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.ERROR, RunState.CANCELLED})
