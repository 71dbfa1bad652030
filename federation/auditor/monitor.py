"""The log monitor: each run checks that the log only grew since the last run, and
reports the new tokens its rules flag.

A run

1. fetches the log's latest checkpoint and opens it with the pinned note key (a
   checkpoint the key did not sign is rejected, whatever else it carries);
2. compares it with the last checkpoint it verified (from its state): a smaller tree
   means the log went back, the same size with another root that it forked;
3. reads every entry added since, from the entry bundles, and folds their leaf hashes
   onto the old tree's right edge: the result must be exactly the new root. That proves
   at once that the new tree extends the old one (the entries seen before are still
   there, unchanged and in their order) and that the entries read are the ones signed,
   without trusting a consistency proof or a hash tile;
4. decodes each new entry (only the canonical encoding is accepted) and asks the rules
   which of them to report.

Nothing is reported, and no state is returned, unless every check passed: an alert
stands for a token the log's key vouches for. On its first run a monitor reads the whole
log, or, when told, starts from the latest tree, whose edge it then reads from the hash
tiles and checks against the signed root.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from federation.auditor.rules import Rules
from federation.auditor.state import MonitorState
from federation.errors import LogVerificationFailed
from federation.transparency.checkpoints import Checkpoint, open_checkpoint
from federation.transparency.entries import LogEntry
from federation.transparency.merkle import Frontier
from federation.transparency.notes import parse_verifier_key
from federation.transparency.tiles import (
    EntryBundle,
    Tile,
    TileHashes,
    new_bundles,
)


class LogReader(Protocol):
    """Where a monitor reads the log: over HTTP (:class:`~federation.auditor.remote.
    RemoteLog`), or a stand-in in tests."""

    def checkpoint(self) -> str:
        """The latest signed checkpoint, as served."""
        ...

    def read_bundle(self, bundle: EntryBundle) -> Sequence[bytes]:
        """The entries of ``bundle``."""
        ...

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """The bytes of each of ``tiles``."""
        ...


@dataclass(frozen=True)
class Alert:
    """An entry a rule reports: the rule's name, the entry's index and the entry."""

    rule: str
    index: int
    entry: LogEntry


@dataclass(frozen=True)
class MonitorRun:
    """What a run verified: the tree it started from (none on a first run), the new
    tree, the entries it read, what the rules report, and the state to keep."""

    previous: Checkpoint | None
    head: Checkpoint
    read: int
    alerts: tuple[Alert, ...]
    state: MonitorState


def watch(
    log: LogReader,
    verifier_key: str,
    state: MonitorState | None,
    rules: Rules,
    *,
    from_latest: bool = False,
) -> MonitorRun:
    """One run of the monitor over ``log``, whose checkpoints ``verifier_key`` signs,
    after ``state`` (None: the first run); :class:`LogVerificationFailed` when anything
    does not verify. ``from_latest`` lets a first run start at the latest tree instead
    of reading the whole log."""
    verifier = parse_verifier_key(verifier_key)
    signed = log.checkpoint()
    try:
        head = open_checkpoint(signed, [verifier], origin=state.origin if state else None)
    except LogVerificationFailed as exc:
        raise LogVerificationFailed(
            f"the log's latest checkpoint does not verify with the pinned key {verifier.name}"
            f"+{verifier.key_id:08x}: {exc.detail}"
        ) from None
    previous = state.head if state is not None else None
    if previous is not None:
        _check_growth(previous, head)
    alerts: list[Alert] = []
    if state is None and from_latest:
        frontier = Frontier.from_reader(head.size, TileHashes(head.size, log))
        if frontier.root != head.root:
            raise LogVerificationFailed(
                f"the log's hash tiles do not hash to its checkpoint of {head.size} entries"
            )
        read = 0
    else:
        start = state.frontier if state is not None else Frontier()
        undecodable: list[LogVerificationFailed] = []
        entries = _checked(_entries(log, start.size, head.size), rules, alerts, undecodable)
        try:
            frontier = head.verify_entries(entries, start)
        except LogVerificationFailed as exc:
            if undecodable:
                raise undecodable[0] from None
            raise LogVerificationFailed(
                f"the entries from {start.size} to {head.size} do not lead from the tree "
                f"of {start.size} entries seen before to the signed tree of {head.size}: the "
                "log was rewritten (an entry changed, removed or moved), or it serves other "
                f"entries than it signed ({exc.detail})"
            ) from None
        read = head.size - start.size
    new_state = MonitorState.of(verifier_key, signed, frontier)
    return MonitorRun(previous, head, read, tuple(alerts), new_state)


def _check_growth(previous: Checkpoint, head: Checkpoint) -> None:
    """A tree never shrinks, and one size has one root."""
    if head.size < previous.size:
        raise LogVerificationFailed(
            f"the log went back from {previous.size} entries to {head.size}: it was rewritten "
            "(both checkpoints carry its key's signature)"
        )
    if head.size == previous.size and head.root != previous.root:
        raise LogVerificationFailed(
            f"the log forked: two signed checkpoints of {head.size} entries with different roots"
        )


def _entries(log: LogReader, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Entries ``start`` to ``end`` with their indexes, a bundle at a time (the first
    bundle may hold entries already seen)."""
    for bundle in new_bundles(start, end):
        entries = log.read_bundle(bundle)
        if len(entries) != bundle.width:
            raise LogVerificationFailed(f"{bundle.path} holds {len(entries)} entries")
        for offset, entry in enumerate(entries):
            if bundle.start + offset >= start:
                yield bundle.start + offset, entry


def _checked(
    entries: Iterator[tuple[int, bytes]],
    rules: Rules,
    alerts: list[Alert],
    undecodable: list[LogVerificationFailed],
) -> Iterator[bytes]:
    """Each entry's bytes, once decoded and matched against ``rules`` (what they report
    goes to ``alerts``; it counts only once every entry verified). At an entry that is
    not one, the error goes to ``undecodable`` and the entries stop: too few to make
    the signed tree."""
    for index, data in entries:
        try:
            entry = LogEntry.decode(data)
        except LogVerificationFailed as exc:
            undecodable.append(LogVerificationFailed(f"entry {index}: {exc.detail}"))
            return
        alerts.extend(Alert(rule.name, index, entry) for rule in rules.reporting(entry))
        yield data
