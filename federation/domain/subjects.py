"""Subject templates: which run attributes make up a token's ``sub``, and how.

A template is a list of components. Each renders as ``name:value`` (``principal``
renders as ``user:<uid>`` or ``service_account:<uid>``), and the components join in the
order given with the separator (``/`` by default)::

    ["teams", "environment"]  ->  teams:t1/environment:e1

IAM policies match on this string, so a value must never be able to fake structure.
Inside a value, ``%`` and ``:`` are percent-encoded (and the separator too, when it is
not ``/``), so a component boundary ``/name:`` can only come from the template:
agent name ``x/environment:prod`` renders ``agent_name:x/environment%3Aprod``. A ``/``
inside a value stays readable, as in Oz's ``skill_spec:acme/repo_path_to_skill``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from federation.errors import InvalidRequest

COMPONENTS = (
    "principal",
    "scoped_principal",
    "email",
    "teams",
    "environment",
    "agent_name",
    "skill_spec",
    "run_id",
    "host",
)
DEFAULT_TEMPLATE = ("principal",)
_NAME = re.compile(r"[a-z][a-z_]{0,31}")
TEAM_COMPONENTS = frozenset({"teams", "scoped_principal"})

# GCP maps `sub` to google.subject, which may not exceed 127 bytes; 255 is the common
# ceiling of OIDC relying parties (AWS types SubjectFromWebIdentityToken as 6-255).
GCP_SUBJECT_LIMIT = 127
SUBJECT_LIMIT = 255
_GCP_AUDIENCE_PREFIXES = ("//iam.googleapis.com/", "https://iam.googleapis.com/")

# Not `%` (the escape character), `*`/`?` (AWS StringLike wildcards), nor characters that
# identifiers and emails hold (`_ . - @ +`), which would have to be encoded in every id.
SEPARATOR_CHOICES = frozenset("/:|;,~!^=#")


def check_separator(separator: str) -> str:
    if len(separator) != 1 or separator not in SEPARATOR_CHOICES:
        raise ValueError(
            f"subject separator must be one of {' '.join(sorted(SEPARATOR_CHOICES))}, "
            f"got {separator!r}"
        )
    return separator


@dataclass(frozen=True)
class SubjectContext:
    """The attributes of a run that a subject can be built from."""

    principal_type: str
    principal_uid: str
    run_id: str
    email: str | None = None
    team: str | None = None
    environment: str | None = None
    agent_name: str | None = None
    skill_spec: str | None = None
    host: str | None = None


def parse_template(components: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a template; ``None`` is the default (``principal``)."""
    if components is None:
        return DEFAULT_TEMPLATE
    if isinstance(components, str):
        components = [components]
    if not components:
        raise InvalidRequest("subject_template needs at least one component")
    unknown = [name for name in components if name not in COMPONENTS]
    if unknown:
        # NOTE: echo the name only when it looks like one; it may be a misplaced secret.
        shown = f" {unknown[0]!r}" if _NAME.fullmatch(unknown[0]) else ""
        raise InvalidRequest(
            f"unknown subject template component{shown}; "
            f"valid components are {', '.join(COMPONENTS)}"
        )
    if len(set(components)) != len(components):
        raise InvalidRequest("subject_template names a component more than once")
    return tuple(components)


def encode_value(value: str, separator: str = "/") -> str:
    """Percent-encode what could fake structure inside one value."""
    encoded = value.replace("%", "%25").replace(":", "%3A")
    if separator != "/":
        encoded = encoded.replace(separator, f"%{ord(separator):02X}")
    return encoded


class SubjectRenderer:
    """Renders templates for one configured separator."""

    def __init__(self, separator: str = "/") -> None:
        self.separator = check_separator(separator)
        # NOTE: a run asks again and again with the same template: rendering is pure,
        # so the last few hundred answers are kept (a fifth of a token's minting time).
        self._rendered = functools.lru_cache(maxsize=512)(self._render)

    def render(self, template: Sequence[str], context: SubjectContext) -> str:
        return self._rendered(tuple(template), context)

    def _render(self, template: tuple[str, ...], context: SubjectContext) -> str:
        return self.separator.join(self._component(name, context) for name in template)

    def _component(self, name: str, ctx: SubjectContext) -> str:
        principal = f"{ctx.principal_type}:{self._value(ctx.principal_uid)}"
        if name == "principal":
            return principal
        if name == "scoped_principal":
            if not ctx.team:
                return f"scoped_principal:{principal}"
            return f"scoped_principal:{self._value(ctx.team)}/{principal}"
        values = {
            "email": ctx.email,
            "teams": ctx.team,
            "environment": ctx.environment,
            "agent_name": ctx.agent_name,
            "skill_spec": ctx.skill_spec,
            "run_id": ctx.run_id,
            "host": ctx.host,
        }
        value = values[name]
        if not value:
            # NOTE: never render an empty value: `environment:` would match policies
            # written for any environment.
            raise InvalidRequest(_missing(name, ctx))
        return f"{name}:{self._value(value)}"

    def _value(self, value: str) -> str:
        return encode_value(value, self.separator)


def _missing(name: str, ctx: SubjectContext) -> str:
    what = {
        "email": f"principal {ctx.principal_type}:{ctx.principal_uid} has no email",
        "teams": f"principal {ctx.principal_type}:{ctx.principal_uid} has no team",
    }.get(name, f"run {ctx.run_id} has no {name}")
    return f"subject template component {name!r} has no value: {what}"


def check_length(subject: str, audience: str) -> None:
    """Refuse subjects the audience's cloud would reject or truncate."""
    size = len(subject.encode())
    if audience.startswith(_GCP_AUDIENCE_PREFIXES) and size > GCP_SUBJECT_LIMIT:
        raise InvalidRequest(
            f"the subject is {size} bytes; GCP maps it to google.subject, which may not "
            f"exceed {GCP_SUBJECT_LIMIT} bytes: use fewer subject template components"
        )
    if size > SUBJECT_LIMIT:
        raise InvalidRequest(
            f"the subject is {size} bytes, more than the {SUBJECT_LIMIT} bytes allowed: "
            "use fewer subject template components"
        )
