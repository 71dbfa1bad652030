"""Prefix traps: a subject pattern that stops in the middle of a component.

This issuer's subjects are components ``name:value`` joined by ``/`` (``teams:t1/
environment:prod``), a ``:`` inside a value being percent-encoded. A prefix is safe when
it ends right after a ``/`` (whole components matched) or a ``:`` (a whole name
matched). Ending anywhere else it stops inside a name or a value, and admits every
longer one too: ``teams:t1*`` admits ``teams:t10/...`` as well as ``teams:t1/...``.
(A ``/`` inside a value, as in ``skill_spec:acme/repo``, counts as a boundary: the
pattern then pins a path prefix, which is what it reads as.)
"""

from __future__ import annotations

BOUNDARIES = ("/", ":")


def open_ended(prefix: str) -> bool:
    """Whether a literal prefix stops inside a component name or value."""
    return bool(prefix) and not prefix.endswith(BOUNDARIES)


def glob_trap(pattern: str) -> str | None:
    """The literal text before the first ``*`` of an IAM ``StringLike`` pattern that
    stops inside a component, or None when every ``*`` follows a boundary."""
    for index, character in enumerate(pattern):
        if character == "*" and index and pattern[index - 1] not in ("*", "?"):
            prefix = pattern[:index]
            if open_ended(prefix):
                return prefix
    return None


def explain(prefix: str, *, wildcard: str = "") -> str:
    """Why a prefix is a trap, and what to write instead (``wildcard`` ends the
    suggested pattern: ``*`` for StringLike, nothing for startsWith), for a warning."""
    return (
        f"it stops inside a subject component after {prefix!r}, so it also admits longer "
        f"values such as {prefix + '0'!r}: end the prefix at a '/' "
        f"({prefix + '/' + wildcard!r}) or match the whole subject exactly"
    )
