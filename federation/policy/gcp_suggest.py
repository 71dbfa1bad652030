"""The narrowest GCP configuration admitting one subject: what ``policy suggest`` prints.

The mapping takes ``google.subject`` from ``sub`` and maps only claims every token of
that subject carries: a subject rendered with a ``teams`` (or team-scoped
``scoped_principal``) component always comes with the ``teams`` claim, one with an
``environment`` or ``agent_name`` component with that claim. The condition pins the
subject by equality, and the IAM member names that one identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.domain.subjects import COMPONENTS, GCP_SUBJECT_LIMIT
from federation.errors import InvalidRequest
from federation.policy import gcp_cel
from federation.policy.gcp_names import ProviderName, is_project_number

# Claims worth a custom attribute of their own: an IAM binding can name them.
ATTRIBUTE_CLAIMS = ("environment", "agent_name")
ISSUER_PLACEHOLDER = "<your issuer URL>"


def suggest(
    subject: str, *, provider_name: str, claims: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The attribute mapping, attribute condition and IAM member admitting exactly
    ``subject`` through the provider ``provider_name``.

    Answers ``attributeMapping``, ``attributeCondition``, ``member``, the ``audience`` to
    request, and the whole ``provider`` as ``gcloud ... describe`` prints it (its
    ``issuerUri`` from ``claims`` when given), ready for :func:`gcp.evaluate`.
    """
    try:
        name = ProviderName.parse(provider_name)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if not is_project_number(name.project):
        raise InvalidRequest(
            f"the provider name uses the project id {name.project!r}: workload identity "
            "federation takes the project number (gcloud projects describe prints it)"
        )
    if not isinstance(subject, str) or not subject:
        raise InvalidRequest("the subject must be a non-empty string")
    size = len(subject.encode())
    if size > GCP_SUBJECT_LIMIT:
        raise InvalidRequest(
            f"the subject is {size} bytes; GCP maps it to google.subject, which may not "
            f"exceed {GCP_SUBJECT_LIMIT} bytes: use fewer subject template components"
        )
    known = claims or {}
    mapping = {"google.subject": "assertion.sub"}
    components = _components(subject)
    if _has_team(components) and (not claims or "teams" in known):
        mapping["google.groups"] = "assertion.teams"
    for claim in ATTRIBUTE_CLAIMS:
        if claim in components and (not claims or claim in known):
            mapping[f"attribute.{claim}"] = f"assertion.{claim}"
    condition = f"assertion.sub == {gcp_cel.quote(subject)}"
    issuer = known.get("iss")
    return {
        "attributeMapping": mapping,
        "attributeCondition": condition,
        "member": name.subject_member(subject),
        # What the token's aud must hold: an empty allowedAudiences accepts the name.
        "audience": name.default_audiences[0],
        "provider": {
            "name": name.resource,
            "oidc": {
                "issuerUri": issuer if isinstance(issuer, str) else ISSUER_PLACEHOLDER,
                "allowedAudiences": [],
            },
            "attributeMapping": dict(mapping),
            "attributeCondition": condition,
        },
    }


def _components(subject: str) -> dict[str, str]:
    """The template components of one of our subjects, by name: inside a value ``:`` is
    percent-encoded, so ``name:`` after a ``/`` is always a component boundary."""
    found: dict[str, str] = {}
    pieces = subject.split("/")
    for index, piece in enumerate(pieces):
        head, colon, value = piece.partition(":")
        if colon and head in COMPONENTS and head not in found:
            if head == "scoped_principal" and index + 1 < len(pieces):
                value = f"{value}/{pieces[index + 1]}"
            found[head] = value
    return found


def _has_team(components: Mapping[str, str]) -> bool:
    if "teams" in components:
        return True
    scoped = components.get("scoped_principal")
    # `scoped_principal:<team>/user:<uid>` has a team; `scoped_principal:user:<uid>` not.
    return scoped is not None and ":" not in scoped.split("/")[0]
