"""The database as issuing sees it: a port (``port``), one adapter per database family
(``sqlite``, ``postgres``) and the group commit that batches their writes."""

from __future__ import annotations

from federation.store.database import Store
from federation.store.issuing.group_commit import GroupCommit
from federation.store.issuing.port import AuditEntry, IssueStore


def issue_store(store: Store) -> IssueStore:
    """The adapter for ``store``'s database."""
    if store.dialect == "postgresql":
        from federation.store.issuing.postgres import PostgresIssueStore

        return PostgresIssueStore(store)
    from federation.store.issuing.sqlite import SqliteIssueStore

    return SqliteIssueStore(store)


__all__ = ["AuditEntry", "GroupCommit", "IssueStore", "issue_store"]
