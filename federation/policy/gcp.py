"""Would GCP's Security Token Service exchange this token, and would an IAM binding
admit the identity it maps to?

:func:`evaluate` takes a workload identity pool provider as ``gcloud iam
workload-identity-pools providers describe --format json`` prints it, a token's
claims (and its header, when known) and, optionally, the IAM ``member`` of a binding. A
provider GCP would refuse to save (its name's IDs, ``issuerUri``, ``allowedAudiences``,
the mapping's keys and limits, CEL that does not parse) raises
:class:`~federation.policy.result.InvalidPolicy` (``INVALID_ARGUMENT``). Otherwise it
checks, in GCP's order: the provider's state, the token's header (``alg``, ``kid``), the
issuer, the audience, the token's times, the attribute mapping, the attribute condition
and the member, and answers with every check, the first refusal in GCP's own words where
they are known, and the foot-guns.

:func:`suggest` writes the narrowest configuration that admits one subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from federation.errors import InvalidPolicy, InvalidRequest
from federation.policy import gcp_mapping, gcp_token
from federation.policy.gcp_mapping import Mapped, Outcome
from federation.policy.gcp_names import (
    IAM_PREFIXES,
    Member,
    MemberKind,
    ProviderName,
    is_project_number,
)
from federation.policy.gcp_suggest import suggest
from federation.policy.result import Check, Evaluation, allow, deny

__all__ = ["admits", "evaluate", "suggest"]

MAX_LIFETIME = timedelta(hours=48)
MAX_AUDIENCES = 10
MAX_AUDIENCE = 256
_AUD_REFUSAL = "invalid_grant: The audience in JWT does not match the expected values"
INVALID = "INVALID_ARGUMENT"  # what the IAM API answers a provider it will not save
REQUIRED_CLAIMS = ("iss", "iat", "exp", "sub", "aud")
DISABLED = (
    "GCP exchanges no token through it (invalid_target: the target service indicated by "
    'the "audience" parameters is invalid, because the pool or provider is disabled or '
    "deleted or doesn't exist)"
)


class _Trail:
    """Checks as they are made, the first refusal, and the warnings."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.refusal: str | None = None
        self.warnings: list[str] = []

    def add(self, check: Check, refusal: str = "") -> None:
        self.checks.append(check)
        if not check.passed and self.refusal is None:
            self.refusal = refusal or check.note

    def merge(self, outcome: Outcome) -> None:
        self.checks.extend(outcome.checks)
        if outcome.refusal and self.refusal is None:
            self.refusal = outcome.refusal
        self.warn(*outcome.warnings)

    def warn(self, *warnings: str) -> None:
        self.warnings.extend(w for w in warnings if w not in self.warnings)


def evaluate(
    provider: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    member: str | None = None,
    header: Mapping[str, Any] | None = None,
    signed: bool = True,
    now: datetime | None = None,
) -> Evaluation:
    """Predict GCP's answer to exchanging a token with ``claims`` (signed with
    ``header``, when known) through ``provider``. ``signed=False``: the header is a
    preview's, whose ``kid`` signing has yet to pick, so only its ``alg`` is checked."""
    if not isinstance(provider, Mapping):
        raise InvalidRequest("the provider must be a JSON object, as gcloud describes it")
    if not isinstance(claims, Mapping):
        raise InvalidRequest("the claims must be a JSON object")
    name = _valid_name(provider.get("name"))
    when = _aware(now or datetime.now(UTC))
    trail = _Trail()
    _check_state(provider, trail)
    oidc = provider.get("oidc")
    if not isinstance(oidc, Mapping):
        kinds = [kind for kind in ("aws", "saml", "x509") if kind in provider]
        note = f"this is not an OIDC provider ({', '.join(kinds) or 'no oidc block'})"
        trail.add(
            Check("provider type", False, {"oidc": oidc}, note), f"{note[0].upper()}{note[1:]}."
        )
        oidc = {}
    _validate(oidc, provider)
    header_check = gcp_token.header_check(header, signed=signed)
    trail.add(header_check, _sentence(header_check.note) if not header_check.passed else "")
    _check_required(claims, trail)
    _check_issuer(oidc, claims, trail)
    _check_audience(oidc, name, claims, trail)
    _check_times(claims, when, trail)
    mapped = gcp_mapping.map_attributes(provider["attributeMapping"], claims)
    trail.merge(mapped.outcome)
    condition = gcp_mapping.check_condition(provider.get("attributeCondition"), claims, mapped)
    trail.merge(condition)
    if member is not None:
        _check_member(member, name, mapped, trail)
    if trail.refusal is not None:
        return deny(trail.refusal, trail.checks, trail.warnings)
    reason = f"GCP would exchange the token for the identity google.subject {mapped.subject!r}"
    if member is not None:
        reason += f", which the member {member} admits"
    return allow(reason + ".", trail.checks, trail.warnings)


def _valid_name(text: object) -> ProviderName:
    try:
        name = ProviderName.parse(text)
    except ValueError as exc:
        raise InvalidPolicy(INVALID, f"the provider's name: {exc}") from None
    problem = name.id_problem()
    if problem:
        raise InvalidPolicy(INVALID, f"the provider's name: {problem}")
    return name


def _validate(oidc: Mapping[str, Any], provider: Mapping[str, Any]) -> None:
    """Refuse, as GCP's API would, a provider that cannot be saved."""
    if oidc:
        issuer = oidc.get("issuerUri")
        if not isinstance(issuer, str) or not issuer.startswith("https://"):
            raise InvalidPolicy(INVALID, "the provider's issuerUri must be an HTTPS endpoint")
        audiences = oidc.get("allowedAudiences") or []
        if (
            not isinstance(audiences, list)
            or len(audiences) > MAX_AUDIENCES
            or any(not isinstance(a, str) or len(a) > MAX_AUDIENCE for a in audiences)
        ):
            raise InvalidPolicy(
                INVALID,
                f"the provider's allowedAudiences must be at most {MAX_AUDIENCES} audiences "
                f"of at most {MAX_AUDIENCE} characters",
            )
    problem = gcp_mapping.problem(
        provider.get("attributeMapping"), provider.get("attributeCondition")
    )
    if problem:
        raise InvalidPolicy(INVALID, problem)


def _check_state(provider: Mapping[str, Any], trail: _Trail) -> None:
    disabled = provider.get("disabled") is True
    state = provider.get("state")
    usable = not disabled and state in (None, "ACTIVE", "STATE_UNSPECIFIED")
    status = "disabled" if disabled else str(state).lower()
    note = "" if usable else f"the provider is {status}, so {DISABLED}"
    refusal = "" if usable else _sentence(note)
    trail.add(
        Check("provider state", usable, {"disabled": disabled, "state": state}, note), refusal
    )


def _check_required(claims: Mapping[str, Any], trail: _Trail) -> None:
    missing = [claim for claim in REQUIRED_CLAIMS if claims.get(claim) in (None, "", [])]
    note = "" if not missing else f"GCP requires the payload fields {', '.join(REQUIRED_CLAIMS)}"
    refusal = f"The token has no {', '.join(missing)}: {note}." if missing else ""
    trail.add(Check("required claims", not missing, {"missing": missing}, note), refusal)


def _check_issuer(oidc: Mapping[str, Any], claims: Mapping[str, Any], trail: _Trail) -> None:
    expected, issuer = oidc.get("issuerUri"), claims.get("iss")
    compared = {"iss": issuer, "issuerUri": expected}
    same = isinstance(issuer, str) and issuer == expected
    note = "" if same else "iss must equal the provider's issuerUri exactly"
    refusal = f"The issuer in ID Token {issuer} does not match the expected ones: {expected}."
    trail.add(Check("issuer", same, compared, note), refusal)


def _check_audience(
    oidc: Mapping[str, Any], name: ProviderName, claims: Mapping[str, Any], trail: _Trail
) -> None:
    configured = [a for a in oidc.get("allowedAudiences") or () if isinstance(a, str)]
    accepted = configured or list(name.default_audiences)
    rule = "allowedAudiences" if configured else "the provider's full resource name (default)"
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    compared = {"aud": aud, "accepted": accepted, "rule": rule}
    _warn_project_ids([*configured, *(a for a in audiences if isinstance(a, str))], name, trail)
    if len(audiences) > 1:
        # NOTE: GCP documents one audience matched against its list; how it treats a
        # token naming several is not documented, so no acceptance is promised.
        note = (
            "the token names several audiences; GCP documents matching one, so this "
            "tester does not promise acceptance: issue it with one audience"
        )
        trail.add(Check("audience", False, compared, note), _sentence(f"{_AUD_REFUSAL}: {note}"))
        return
    matched = audiences[0] in accepted
    if matched:
        note = "one audience, as our tokens carry it (a one-element aud array)"
        if isinstance(aud, str):
            note = "a single audience"
        trail.add(Check("audience", True, compared, note))
        return
    note = f"aud must be one of {', '.join(accepted)}"
    trail.add(Check("audience", False, compared, note), f"{_AUD_REFUSAL}: {note}.")


def _warn_project_ids(audiences: list[str], name: ProviderName, trail: _Trail) -> None:
    places = [name.project] if not is_project_number(name.project) else []
    for audience in audiences:
        bare = audience
        for prefix in IAM_PREFIXES:
            bare = bare.removeprefix(prefix)
        if bare != audience and bare.startswith("projects/"):
            project = bare.split("/")[1] if bare.count("/") else ""
            if project and not is_project_number(project):
                places.append(project)
    for project in dict.fromkeys(places):
        trail.warn(
            f"The audience names the project by its id {project!r}: workload identity "
            "federation takes the project number (gcloud projects describe prints it)."
        )


def _check_times(claims: Mapping[str, Any], now: datetime, trail: _Trail) -> None:
    iat, exp = _seconds(claims.get("iat")), _seconds(claims.get("exp"))
    instant = now.timestamp()
    shown_now = now.isoformat().replace("+00:00", "Z")
    if exp is not None:
        fresh = exp > instant
        note = "" if fresh else f"the token expired at {_iso(exp)}"
        trail.add(
            Check("expiry", fresh, {"exp": claims.get("exp"), "now": shown_now}, note),
            f"The token expired at {_iso(exp)}, before {shown_now}.",
        )
    if iat is not None:
        past = iat <= instant
        note = "" if past else "iat must be in the past"
        trail.add(
            Check("issued at", past, {"iat": claims.get("iat"), "now": shown_now}, note),
            f"iat must be in the past, and it is {_iso(iat)}, after {shown_now}.",
        )
    if iat is not None and exp is not None:
        lifetime = timedelta(seconds=exp - iat)
        short = lifetime < MAX_LIFETIME
        note = "" if short else "exp must be less than 48 hours after iat"
        compared = {
            "lifetime_seconds": claims["exp"] - claims["iat"],
            "limit_seconds": int(MAX_LIFETIME.total_seconds()),
        }
        trail.add(
            Check("lifetime", short, compared, note),
            f"exp must be less than 48 hours after iat, and it is {(exp - iat) / 3600:g} hours "
            "after it.",
        )
    for claim, value in (("iat", iat), ("exp", exp)):
        if value is None and claims.get(claim) is not None:
            note = f"{claim} must be a number of seconds since the epoch"
            trail.add(Check(claim, False, {claim: claims.get(claim)}, note), _sentence(note))


def _check_member(member: str, name: ProviderName, mapped: Mapped, trail: _Trail) -> None:
    what = "IAM member"
    try:
        parsed = Member.parse(member)
    except ValueError as exc:
        trail.add(Check(what, False, {"member": member}, str(exc)), _sentence(str(exc)))
        return
    compared: dict[str, Any] = {"member": member, "pool": name.pool_path}
    if not is_project_number(parsed.project):
        trail.warn(
            f"The member names the project by its id {parsed.project!r}: principal "
            "identifiers take the project number, so it matches no identity."
        )
    if parsed.pool_path != name.pool_path:
        note = f"it is in the pool {parsed.pool_path}, not the provider's pool {name.pool_path}"
        trail.add(
            Check(what, False, compared, note),
            _sentence(f"The member {member} names no identity of this provider: {note}"),
        )
        return
    if parsed.kind is MemberKind.ALL:
        trail.warn(
            f"The member {member} is every identity in the pool: any token any provider of "
            "the pool accepts gets the role; name the subject instead."
        )
        trail.add(Check(what, True, compared, parsed.describe()))
        return
    if mapped.subject is None:
        note = "no identity was mapped, so no member can match"
        trail.add(
            Check(what, False, compared, note),
            _sentence(f"The member {member} matches nothing: {note}"),
        )
        return
    held = _held(parsed, mapped)
    compared["identity"] = held
    matched = parsed.value in held
    note = f"{parsed.describe()}; this identity has {held or 'none'}"
    refusal = (
        f"The member {member} does not name this identity ({note}), so the binding grants "
        "it nothing (impersonation answers: Permission 'iam.serviceAccounts.getAccessToken' "
        "denied)."
    )
    trail.add(Check(what, matched, compared, note), refusal)


def admits(member: str, name: ProviderName, mapped: Mapped) -> bool:
    """Whether the IAM ``member`` names the identity ``mapped`` from a token through the
    provider ``name``, by the rule of :func:`evaluate`'s member check (the GCP stand-in's
    impersonation uses it)."""
    try:
        parsed = Member.parse(member)
    except ValueError:
        return False
    if parsed.pool_path != name.pool_path:
        return False
    if parsed.kind is MemberKind.ALL:
        return True
    return mapped.subject is not None and parsed.value in _held(parsed, mapped)


def _held(member: Member, mapped: Mapped) -> list[str]:
    if member.kind is MemberKind.SUBJECT:
        return [mapped.subject] if mapped.subject is not None else []
    if member.kind is MemberKind.GROUP:
        return list(mapped.groups)
    value = mapped.attributes.get(member.name)
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list) else []


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return when.astimezone(UTC)


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."
