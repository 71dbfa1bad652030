"""Tampering with the transparency log in the issuer's database, as an attacker with
write access to it would (SQL on the log's tables, no log key), and which of the
auditor's tools reports it.

One issuer per database (SQLite, PostgreSQL) issues :data:`ISSUED` tokens, once. A
monitor runs after the first :data:`SEEN` of them (its state: :data:`BEFORE`) and again
after all of them (:data:`AFTER`); then each test rewrites, deletes, reorders or forks
the log's rows and runs

- ``federation log monitor`` from a copy of each state: a monitor that has not read the
  tampered entry yet, and one that read it before it was tampered with;
- ``federation verify TOKEN --require-logged`` for the token whose entry is tampered
  with, and for a token whose entry nothing touches.

Each test asserts exactly which of them report the tampering (exit 1, one line, the
state file as it was) and which pass, and why; after it the log's rows are put back as
they were, so that every test starts from the same log. The table in the threat model
of the README sums these tests up.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from federation.clock import SystemClock
from federation.keys.log_keys import FileLogKeys
from federation.ledger import Ledger
from federation.store import Store
from federation.store.log import LogRecords
from federation.store.models import IssuedToken, LogCheckpoint, LogEntryRow, LogHash, LogHead
from federation.transparency import LogEntry
from tests.auditor.live import AWS, WAIT, cli
from tests.auditor.logs import right_edge, tree_hash
from tests.cli.helpers import assert_error_line, issue_over_http
from tests.conftest import PostgresDatabases
from tests.support import Agent, LiveServer, serve_issuer

pytestmark = pytest.mark.integration

SEEN = 3  # tokens issued before the monitor's first run
ISSUED = 7  # tokens in the signed tree when the tampering starts
TARGET = 4  # the entry tampered with: issued after the first run, before the second
NEIGHBOUR = 5  # the entry TARGET trades places with
UNTOUCHED = 0  # a token whose entry no test touches
BEFORE, AFTER = "before", "after"  # the monitor's state after SEEN, after ISSUED tokens
ATTACKER = "repo:attacker/repo:ref:refs/heads/main"
# What each tool says (after "federation: ") when it reports a tampering.
REWRITTEN = (
    f"The transparency log did not verify. (the entries from {SEEN} to {ISSUED} do not lead "
    f"from the tree of {SEEN} entries seen before to the signed tree of {ISSUED}: the log was "
    "rewritten"
)
FORKED = (
    f"The transparency log did not verify. (the log forked: two signed checkpoints of {ISSUED} "
    "entries with different roots)"
)
NOT_INCLUDED = "The requested resource was not found. (the transparency log does not include"
NOT_PROVED = (  # .format(index)
    f"The transparency log did not verify. (leaf {{}} is not in the tree of {ISSUED} leaves)"
)
LOG_TABLES: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (LogHead, LogEntryRow, LogHash, LogCheckpoint)
)


@dataclass
class Scene:
    """The issuer, what it issued, the monitor's two states, and the attacker's own
    connection to the issuer's database."""

    server: LiveServer
    audit_key: str
    agent: Agent
    tokens: list[dict[str, Any]]  # in the order of their entries in the log
    states: dict[str, bytes]
    database: Store
    rows: dict[str, list[dict[str, Any]]]  # the log's tables as the tokens left them

    @property
    def entries(self) -> list[bytes]:
        """The log's entries as the tokens left them, in their order."""
        rows = sorted(self.rows[LogEntryRow.__tablename__], key=lambda row: row["idx"])
        return [bytes(row["entry"]) for row in rows]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("issuer")
    if request.param == "sqlite":
        with serve_issuer(home) as server:
            yield server
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        with serve_issuer(home, database_url=f"{databases.base}/{name}") as server:
            yield server
    finally:
        databases.give_back(name)


@pytest.fixture(scope="module")
def scene(
    server: LiveServer, audit_key: str, agent: Agent, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    state = tmp_path_factory.mktemp("monitor") / "state.json"
    states, tokens = {}, []
    for name, count in ((BEFORE, SEEN), (AFTER, ISSUED - SEEN)):
        tokens += [issue_over_http(server, agent) for _ in range(count)]
        # Proving the newest token has the log sign a tree that holds it.
        proved = cli(server, audit_key, "log", "prove", tokens[-1]["token"], "--wait", WAIT)
        assert proved.returncode == 0, proved.stderr
        monitored = cli(server, audit_key, "log", "monitor", "--state", str(state))
        assert monitored.returncode == 0, monitored.stderr
        assert json.loads(state.read_text())["size"] == len(tokens)
        states[name] = state.read_bytes()
    database = Store.from_url(server.env["FEDERATION_DATABASE_URL"], create=False)
    try:
        with database.session() as session:
            logged = session.scalars(
                select(IssuedToken.jti)
                .join(LogEntryRow, LogEntryRow.idx == IssuedToken.log_idx)
                .order_by(LogEntryRow.idx)
            ).all()
            rows = {
                table.name: [dict(row) for row in session.execute(select(table)).mappings()]
                for table in LOG_TABLES
            }
        assert logged == [token["jti"] for token in tokens]
        yield Scene(server, audit_key, agent, tokens, states, database, rows)
    finally:
        database.dispose()


@pytest.fixture
def attacker(scene: Scene) -> Iterator[Scene]:
    """The scene, whose log's rows are put back as they were after the test."""
    yield scene
    with scene.database.session() as session:
        for table in reversed(LOG_TABLES):
            session.execute(delete(table))
        for table in LOG_TABLES:
            if scene.rows[table.name]:
                session.execute(insert(table), scene.rows[table.name])


# ---- what the attacker does, in SQL on the log's tables ---------------------------------


def entries(session: Session) -> list[bytes]:
    return [bytes(e) for e in session.scalars(select(LogEntryRow.entry).order_by(LogEntryRow.idx))]


def rewrite(session: Session, index: int, *, leaf: bool = False, head: bool = False) -> None:
    """Entry ``index`` now names :data:`ATTACKER` as its subject (canonically encoded);
    with ``leaf`` its leaf hash is rewritten to match, with ``head`` the head's right
    edge too (hashed by RFC 9162 alone), so that the database is a consistent tree
    whose root no checkpoint signed."""
    row = session.get_one(LogEntryRow, index)
    forged = dataclasses.replace(LogEntry.decode(bytes(row.entry)), sub=ATTACKER).encode()
    row.entry = forged
    if leaf:
        row.leaf_hash = hashlib.sha256(b"\x00" + forged).digest()
    session.flush()
    if head:
        rewind_head(session)


def rewind_head(session: Session) -> None:
    """The head says the tree of the entries the table holds now."""
    held = entries(session)
    session.execute(update(LogHead).values(size=len(held), edge=b"".join(right_edge(held))))


def remove(session: Session, index: int, *, renumber: bool = False) -> None:
    """Entry ``index`` deleted; with ``renumber``, the later entries moved down one
    index to close the gap and the head rewound to the entries left, so that the next
    token issued fills the log to its signed size again."""
    session.execute(delete(LogEntryRow).where(LogEntryRow.idx == index))
    if renumber:
        last = session.scalar(select(func.max(LogEntryRow.idx)))
        assert last is not None
        for later in range(index + 1, last + 1):
            session.execute(
                update(LogEntryRow).where(LogEntryRow.idx == later).values(idx=later - 1)
            )
        rewind_head(session)


def swap(session: Session, first: int, second: int) -> None:
    """Entries ``first`` and ``second`` trade indexes (leaf hashes and all)."""
    moves = ((first, -1), (second, first), (-1, second))  # NOTE: idx is the primary key
    for old, new in moves:
        session.execute(update(LogEntryRow).where(LogEntryRow.idx == old).values(idx=new))


def restarted(attacker: Scene) -> Ledger:
    """The log as an issuer started afresh on the attacker's database sees it: the same
    log key and origin, no memory of what the running one signed."""
    return Ledger(
        LogRecords(attacker.database),
        FileLogKeys(attacker.server.home / "keys"),
        attacker.server.url.removeprefix("http://") + "/log",
        SystemClock(),
    )


def forget_checkpoints(session: Session) -> None:
    """The signed checkpoints gone: the log signs the tree its head says when asked."""
    session.execute(delete(LogCheckpoint))


def signed_tree(note: str, verifier_key: str) -> tuple[int, bytes]:
    """The size and root of a checkpoint whose signed note carries a valid Ed25519
    signature of ``verifier_key`` (C2SP signed-note and tlog-checkpoint, read here with
    the ``cryptography`` package alone, not the project's code)."""
    name, key_id, encoded = verifier_key.split("+", 2)
    key = base64.b64decode(encoded)
    assert key[0] == 1  # Ed25519
    text, signatures = note.split("\n\n", 1)
    text += "\n"
    for line in signatures.splitlines():
        signer, signature = line.removeprefix("\u2014 ").split(" ")
        raw = base64.b64decode(signature)
        if signer == name and raw[:4].hex() == key_id:
            assert hashlib.sha256(f"{name}\n".encode() + key).digest()[:4] == raw[:4]
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], text.encode())
            origin, size, root = text.splitlines()[:3]
            assert origin == name
            return int(size), base64.b64decode(root)
    raise AssertionError(f"no signature of {name} on the checkpoint")


# ---- the auditor's tools ----------------------------------------------------------------


def monitor(scene: Scene, state: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``log monitor`` from a copy of the state ``state``; a run that fails must leave
    the state file as it was."""
    path = tmp_path / f"{state}.json"
    path.write_bytes(scene.states[state])
    result = cli(scene.server, scene.audit_key, "log", "monitor", "--state", str(path))
    if result.returncode != 0:
        assert path.read_bytes() == scene.states[state]
    return result


def verify(scene: Scene, index: int) -> subprocess.CompletedProcess[str]:
    """``verify --require-logged`` of the token of entry ``index``."""
    token = scene.tokens[index]["token"]
    return cli(
        scene.server, scene.audit_key, "verify", token, "--audience", AWS, "--require-logged"
    )


def reported(result: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    """The one line a tool reports a tampering with (after ``federation: ``)."""
    return assert_error_line(result, exit_code)


def passed(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of a tool that found nothing wrong."""
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()[-1]


def monitor_that_read_it_passes(scene: Scene, tmp_path: Path) -> None:
    """A monitor that read every entry before the tampering reads none now: the tree it
    verified is still the signed one, and it keeps no entries to compare."""
    line = passed(monitor(scene, AFTER, tmp_path))
    assert f"verified at {ISSUED} entries (0 read since {ISSUED}); 0 alerts" in line


# ---- the cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "head"), [(False, False), (True, False), (True, True)], ids=["entry", "leaf", "head"]
)
def test_a_rewritten_entry(attacker: Scene, tmp_path: Path, leaf: bool, head: bool) -> None:
    """The entry says another subject; the checkpoint the log key signed still has the
    old root, whatever else the attacker rewrites to match (the leaf hash, the head)."""
    with attacker.database.session() as session:
        rewrite(session, TARGET, leaf=leaf, head=head)

    assert reported(monitor(attacker, BEFORE, tmp_path)).startswith(REWRITTEN)
    monitor_that_read_it_passes(attacker, tmp_path)
    assert reported(verify(attacker, TARGET)) == NOT_PROVED.format(TARGET)
    # The server computes every proof from the stored leaf hashes: once the tampered
    # one is rewritten, no token's proof in its tile leads to the signed root.
    other = verify(attacker, UNTOUCHED)
    if leaf:
        assert reported(other) == NOT_PROVED.format(UNTOUCHED)
    else:
        assert "; logged as entry 0 of " in passed(other)


def test_a_deleted_entry(attacker: Scene, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The row is gone: the database holds fewer entries than the tree the log signed.
    The server serves what it holds (and logs the gap); the monitor finds the bundle
    short of the signed tree. A proof the server cannot make from its rows is its own
    failure (a 500: exit 75), never the request's."""
    with attacker.database.session() as session:
        remove(session, TARGET)

    missing = reported(monitor(attacker, BEFORE, tmp_path))
    assert missing.startswith(REWRITTEN)
    assert f"holds {ISSUED - 1} entries, not {ISSUED}" in missing
    assert f"rows of tile/entries/000.p/{ISSUED} are missing" in caplog.text
    monitor_that_read_it_passes(attacker, tmp_path)
    assert reported(verify(attacker, TARGET)).startswith(NOT_INCLUDED)
    unprovable = reported(verify(attacker, UNTOUCHED), 75)
    assert unprovable.startswith("An unexpected error occurred. Please try again later.")
    assert "a proof cannot be made from the stored rows" in caplog.text


def test_a_deleted_entry_with_the_gap_closed(attacker: Scene, tmp_path: Path) -> None:
    """The row is gone, the later ones renumbered and the head rewound, and the next
    token issued fills the log to the size of the signed tree: a whole log that lacks
    the entry."""
    with attacker.database.session() as session:
        remove(session, TARGET, renumber=True)
    issue_over_http(attacker.server, attacker.agent)
    with attacker.database.session() as session:
        assert len(entries(session)) == ISSUED

    assert reported(monitor(attacker, BEFORE, tmp_path)).startswith(REWRITTEN)
    monitor_that_read_it_passes(attacker, tmp_path)
    assert reported(verify(attacker, TARGET)).startswith(NOT_INCLUDED)
    assert reported(verify(attacker, UNTOUCHED)) == NOT_PROVED.format(UNTOUCHED)


def test_two_entries_reordered(attacker: Scene, tmp_path: Path) -> None:
    """Two entries trade places, each with its leaf hash: the same entries, in another
    order."""
    with attacker.database.session() as session:
        swap(session, TARGET, NEIGHBOUR)

    assert reported(monitor(attacker, BEFORE, tmp_path)).startswith(REWRITTEN)
    monitor_that_read_it_passes(attacker, tmp_path)
    # The token's entry is found at its new index, where the signed tree has another.
    assert reported(verify(attacker, TARGET)) == NOT_PROVED.format(NEIGHBOUR)
    assert reported(verify(attacker, UNTOUCHED)) == NOT_PROVED.format(UNTOUCHED)


@pytest.mark.parametrize("index", [TARGET, 1], ids=["unread-entry", "read-entry"])
def test_a_fork(
    attacker: Scene, tmp_path: Path, index: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The entry, its leaf hash and the head rewritten, and the checkpoints deleted. The
    running issuer refuses to sign the tampered tree: it does not extend the tree it
    signed. An issuer started afresh on that database (no memory of it) signs it, of
    the size of the one signed before, with the log key: two checkpoints of one size
    with different roots, each valid; only who kept the first can tell."""
    with attacker.database.session() as session:
        rewrite(session, index, leaf=True, head=True)
        forget_checkpoints(session)
        forged_root = tree_hash(entries(session))
    refused = cli(attacker.server, attacker.audit_key, "log", "checkpoint")
    assert reported(refused, 75).startswith("An unexpected error occurred.")
    assert f"NOT signing a tree of {ISSUED} entries" in caplog.text
    restarted(attacker).sign()
    served = cli(
        attacker.server, attacker.audit_key, "log", "checkpoint", "--output-format", "json"
    )
    assert served.returncode == 0, served.stderr
    forged, kept = json.loads(served.stdout), json.loads(attacker.states[AFTER])
    honest_root = tree_hash(attacker.entries)

    # Two checkpoints of one size, both signed by the log's key (checked here with
    # Ed25519 alone), with different roots: each the tree of what the database held.
    assert signed_tree(kept["checkpoint"], kept["verifier_key"]) == (ISSUED, honest_root)
    assert signed_tree(forged["checkpoint"], kept["verifier_key"]) == (ISSUED, forged_root)
    # The monitor that kept the checkpoint of the same size reports the fork.
    assert reported(monitor(attacker, AFTER, tmp_path)) == FORKED
    if index >= SEEN:
        # One that saw only a smaller tree, which the forged one extends, cannot tell.
        assert f"verified at {ISSUED} entries ({ISSUED - SEEN} read since {SEEN})" in passed(
            monitor(attacker, BEFORE, tmp_path)
        )
    else:
        assert reported(monitor(attacker, BEFORE, tmp_path)).startswith(REWRITTEN)
    # The token's own entry no longer says what the token does.
    assert reported(verify(attacker, index)) == (
        f"The transparency log did not verify. (the log records sub {ATTACKER!r} for this "
        f"token, which carries {attacker.tokens[index]['subject']!r})"
    )
    # Any other token is included in the forged tree, signed by the log key.
    assert f"; logged as entry {UNTOUCHED} of " in passed(verify(attacker, UNTOUCHED))
