"""Request and response bodies of the HTTP API: the trust boundary, so strict.

Identifiers (principal, team and run ids) are restricted to a small alphabet without
``/`` or ``:``, so that they can never look like subject structure, and run ids fit in
an AWS role session name (``Oz_Run_<run-id>``, at most 64 characters).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from federation.domain.run_states import RunState
from federation.domain.secret_shapes import find_secret
from federation.registry.auth import mask


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("control characters are not allowed")
    if value != value.strip():
        raise ValueError("leading or trailing whitespace is not allowed")
    return value


Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")]
RunIdentifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,56}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_printable)]
# What is looked up rather than stored: any printable text (a run id that cannot exist
# is a 404, not a 400), but never a control character such as NUL.
Lookup = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_printable)]
Audience = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)
]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s:%/]+@[^@\s:%/]+$", max_length=320)]
ScopeName = Literal["federate", "runs:write", "audit", "admin"]
Algorithm = Literal["ES256", "RS256"]


def _default_scopes() -> list[ScopeName]:
    return ["federate"]


# A request body: no field it does not declare, and no secret in any field. A secret goes
# in a header (`Authorization`, `X-Warp-Ambient-Workload-Token`); one in a body is
# misplaced, and storing it as a run id or a name would keep it in the clear, shown to
# whoever lists runs. So it is refused, naming the field only. (A comment, not a
# docstring: that would become every body's description in the OpenAPI document.)
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, data: Any) -> Any:
        found = find_secret(data)
        if found is not None:
            raise PydanticCustomError(
                "misplaced_secret",
                "{where} holds what looks like {kind}; send secrets only in their headers",
                {"where": found[0], "kind": found[1]},
            )
        return data


# ---- requests -------------------------------------------------------------------------


class PrincipalCreate(Strict):
    type: Literal["user", "service_account"]
    uid: Identifier
    email: Email | None = None
    display_name: Text | None = None
    teams: list[Identifier] = Field(default_factory=list, max_length=100)


class ApiKeyCreate(Strict):
    name: Name
    type: Literal["personal", "agent"] = "personal"
    principal_uid: Identifier | None = None
    scopes: list[ScopeName] = Field(default_factory=_default_scopes, min_length=1)
    expires_in: Literal["1d", "30d", "90d", "never"] = "30d"


class RunCreate(Strict):
    run_id: RunIdentifier | None = None
    principal_uid: Identifier
    team_uid: Identifier | None = None
    environment: Text | None = None
    agent_name: Text | None = None
    skill_spec: Text | None = None
    host: Text | None = None
    state: RunState = RunState.QUEUED


class RunUpdate(Strict):
    state: RunState


class TokenRequestBody(Strict):
    """What a token for a run should carry; the run is in the path or in the body."""

    audience: Audience
    duration: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description="Lifetime such as 15m, 1h or 2h30m (default 1h)."
    )
    requested_duration_seconds: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | None = Field(
        default=None, description="Lifetime in whole seconds, instead of duration."
    )
    subject_template: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None, max_length=16, description="Components joined into sub (default principal)."
    )
    team_uid: Identifier | None = None
    algorithm: Algorithm | None = Field(
        default=None, description="ES256 (default) or RS256; Entra's audience is always RS256."
    )
    aws_session_tags: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(
        default=None,
        max_length=16,
        description="Run attributes to carry as AWS session tags (https://aws.amazon.com/tags).",
    )


class IssueTokenBody(TokenRequestBody):
    run_id: Lookup


class RotateBody(Strict):
    alg: Algorithm | None = Field(default=None, description="Rotate one algorithm (default both).")


# ---- responses ------------------------------------------------------------------------
#
# A response that shows a stored object is read from that object's attributes:
# `Model.model_validate(row)`. Each field names where it comes from when the name differs,
# and small validators derive what is not stored as such (the masked key). Response
# models carry comments rather than docstrings: a docstring would become the model's
# description in the OpenAPI document.


class FromAttributes(BaseModel):
    """A response read from an object's attributes: a database row, a key's status."""

    model_config = ConfigDict(from_attributes=True)


class _ResultAndRow:
    """A registry result and the row it carries, read as one object: the result's own
    attributes (the secret shown once) first, then the row's."""

    def __init__(self, result: Any) -> None:
        self._result = result

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._result, name)
        except AttributeError:
            return getattr(self._result.row, name)


class _Created(FromAttributes):
    """A new row and the secret that came with it, read from the registry's result
    (`CreatedKey`, `RegisteredRun`): the row's fields and the secret beside them."""

    @model_validator(mode="before")
    @classmethod
    def _beside_row(cls, result: Any) -> Any:
        return _ResultAndRow(result)


# The stored last four characters of an API key, shown as the key's masked form.
MaskedKey = Annotated[str, AfterValidator(mask)]


class PrincipalOut(FromAttributes):
    type: str
    uid: str
    email: str | None
    display_name: str | None
    teams: list[str]
    created_at: datetime


class ApiKeyOut(FromAttributes):
    id: str
    name: str
    type: str
    principal_uid: str
    scopes: list[str]
    masked_key: MaskedKey = Field(validation_alias="last4")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut, _Created):
    key: str = Field(
        validation_alias="raw",
        description="The raw API key. It is shown once and stored only as a hash.",
    )


class RunOut(FromAttributes):
    run_id: str
    principal_uid: str
    team_uid: str | None
    environment: str | None
    agent_name: str | None
    skill_spec: str | None
    host: str | None
    state: str
    created_at: datetime
    updated_at: datetime


class RunCreated(RunOut, _Created):
    workload_token: str = Field(
        description="Proves a token request comes from inside the run. Shown once."
    )


class TokenOut(BaseModel):
    token: str
    token_type: str
    issued_at: datetime
    expires_at: datetime
    issuer: str
    subject: str
    audience: list[str] | str
    jti: str
    kid: str


class TokenPreview(BaseModel):
    header: dict[str, str] = Field(description="The protected header, but for kid.")
    claims: dict[str, Any] = Field(description="The claims, as issue-token would sign them.")


class RunTokenPreview(TokenPreview):
    issuable: bool = Field(description="Whether the run's state lets a token be issued now.")
    refusal: str | None = Field(description="What issue-token would answer for the state.")
    subject_components: dict[str, str | None] = Field(
        description="Each template component rendered alone for the run; null where the "
        "run lacks the value (issue-token refuses that component)."
    )


# Read from a key's `KeyStatus`: the state and its times there, the rest in its record.
class KeyOut(FromAttributes):
    kid: str = Field(validation_alias=AliasPath("record", "kid"))
    alg: str = Field(validation_alias=AliasPath("record", "alg"))
    state: str
    created_at: datetime = Field(validation_alias=AliasPath("record", "created_at"))
    activates_at: datetime = Field(validation_alias=AliasPath("record", "activates_at"))
    retires_at: datetime | None
    removed_at: datetime | None
    location: str = Field(
        validation_alias=AliasPath("record", "location"),
        description="Where the private key lives: a file, the database, KMS.",
    )


class KeyChangeOut(BaseModel):
    key: KeyOut
    replacement: KeyOut | None = Field(description="The key that signs instead, if one had to.")
    outstanding_tokens: int = Field(description="Unexpired tokens the key signed.")
    outstanding_until: datetime | None = Field(description="When the last of them expires.")
    warnings: list[str]


class AuditOut(FromAttributes):
    jti: str
    run_id: str
    principal_uid: str
    team_uid: str | None
    subject: str
    audience: str
    alg: str
    kid: str
    issued_at: datetime
    expires_at: datetime
    api_key_id: str
    trace_id: str | None


class KeySummary(BaseModel):
    id: str
    name: str
    type: str
    masked_key: str
    expires_at: datetime | None


class WhoAmI(BaseModel):
    type: str
    uid: str
    display_name: str | None
    email: str | None
    teams: list[str]
    scopes: list[str]
    key: KeySummary


# Read from a store `Page`.
class PageInfo(FromAttributes):
    has_next_page: bool
    next_cursor: str | None


T = TypeVar("T")


class ListOut(BaseModel, Generic[T]):
    items: list[T]
    page_info: PageInfo


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
