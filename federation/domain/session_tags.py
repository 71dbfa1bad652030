"""AWS session tags carried in a token (the ``https://aws.amazon.com/tags`` claim).

A request names which run attributes become tags (``aws_session_tags``); AWS STS then
sets them on the assumed-role session as ``aws:PrincipalTag/<name>``, where IAM policies
can match them (attribute-based access control). The role's trust policy must allow
``sts:TagSession`` as well as ``sts:AssumeRoleWithWebIdentity``.

AWS's limits are checked here, so a refused tag is our clear error rather than STS's
opaque one: at most 50 tags, keys of at most 128 and values of at most 256 characters
from letters, digits, spaces and ``_ . : / = + - @``, no ``aws:`` prefix, one value each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from federation.errors import InvalidRequest

TAGGABLE = (
    "principal",
    "team",
    "email",
    "environment",
    "agent_name",
    "skill_spec",
    "run_id",
    "host",
)
MAX_TAGS = 50
_VALUE = re.compile(r"[\w .:/=+\-@]{0,256}")


def session_tags(
    names: Sequence[str] | None, values: dict[str, str | None]
) -> dict[str, str] | None:
    """The tags for ``names``, from ``values`` (the run's attributes by tag name)."""
    if not names:
        return None
    if len(names) > MAX_TAGS:
        raise InvalidRequest(f"at most {MAX_TAGS} AWS session tags")
    unknown = [name for name in names if name not in TAGGABLE]
    if unknown:
        shown = f" {unknown[0]!r}" if re.fullmatch(r"[a-z_]{1,32}", unknown[0]) else ""
        raise InvalidRequest(
            f"unknown AWS session tag{shown}; tags can be made of {', '.join(TAGGABLE)}"
        )
    tags: dict[str, str] = {}
    for name in dict.fromkeys(names):
        value = values.get(name)
        if not value:
            raise InvalidRequest(f"AWS session tag {name!r} has no value for this run")
        if not _VALUE.fullmatch(value):
            raise InvalidRequest(
                f"the value of AWS session tag {name!r} has characters AWS tags do not allow "
                "(letters, digits, spaces and _ . : / = + - @ only, 256 at most)"
            )
        tags[name] = value
    return tags
