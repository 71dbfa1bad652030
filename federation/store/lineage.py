"""A key's lineage: the keys that created it, by ``parent_key_id``, up to an admin's.

A key made without ``admin`` records the key that made it; deleting a key deletes the
keys it made, in the same transaction. Authentication also walks the lineage and
refuses a key any of whose ancestors is deleted, so that a key is never worth more than
the keys above it, whatever rows an older version left behind. Lineages are at most
:data:`MAX_LINEAGE_DEPTH` keys deep below the admin's key, which bounds the walk.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import CTE, Exists, Integer, and_, exists, literal_column, or_, select
from sqlalchemy.orm import aliased

from federation.store.models import ApiKey

# Ancestors a key may have: a key with this many cannot create keys.
MAX_LINEAGE_DEPTH = 16
# NOTE: constants written into the SQL, not bound: the issuing port binds only what it
# is given (``federation.store.issuing.compiled``)
_ONE = literal_column("1", Integer)
_MAX = literal_column(str(MAX_LINEAGE_DEPTH), Integer)


def ancestors(by: Literal["id", "key_hash"], value: Any) -> CTE:
    """The ancestors of the key whose ``by`` column is ``value`` (or a bound
    parameter), nearest first, each with its ``depth`` (1: the parent), at most
    :data:`MAX_LINEAGE_DEPTH` of them."""
    child = aliased(ApiKey, name="lineage_child")
    parent = aliased(ApiKey, name="lineage_parent")
    walk = (
        select(parent.id, parent.parent_key_id, parent.deleted_at, _ONE.label("depth"))
        .join(child, child.parent_key_id == parent.id)
        .where(getattr(child, by) == value)
        .cte("ancestors", recursive=True)
    )
    above = aliased(ApiKey, name="lineage_above")
    return walk.union_all(
        select(above.id, above.parent_key_id, above.deleted_at, walk.c.depth + _ONE)
        .join(walk, walk.c.parent_key_id == above.id)
        .where(walk.c.depth < _MAX)
    )


def revoked_ancestry(by: Literal["id", "key_hash"], value: Any) -> Exists:
    """Whether an ancestor of the key whose ``by`` column is ``value`` is deleted, or
    its lineage runs deeper than :data:`MAX_LINEAGE_DEPTH` (no key made since can)."""
    walk = ancestors(by, value)
    return exists().where(
        or_(
            walk.c.deleted_at.is_not(None),
            and_(walk.c.depth >= _MAX, walk.c.parent_key_id.is_not(None)),
        )
    )
