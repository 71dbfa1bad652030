"""Try it: the claims a run's token would carry (a dry run; nothing is signed), and the
AWS trust policy and GCP provider mapping that admit exactly its subject.

The claims come from ``POST /api/v1/runs/{run_id}/preview-token``; the policies are
derived from them by :mod:`federation.policy`, as ``federation policy suggest`` does.
Without an AWS account id or a GCP provider, a policy shows a blank to fill in where
they go (``<AWS account id>``, ``projects/<project number>/...``).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, page, section
from federation.domain.subjects import COMPONENTS
from federation.errors import FederationError, InvalidRequest

AUDIENCES = (
    "sts.amazonaws.com",
    "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz/providers/federation",
    "api://AzureADTokenExchange",
)
DEFAULTS = {
    "run_id": "",
    "audience": "sts.amazonaws.com",
    "duration": "1h",
    "subject_template": "principal",
    "aws_account": "",
    "gcp_provider": "",
}
# Shown in the empty fields as examples: never sent, never in a policy.
EXAMPLES = {
    "aws_account": "111122223333",
    "gcp_provider": (
        "projects/123456789012/locations/global/workloadIdentityPools/oz/providers/federation"
    ),
}
AWS_ACCOUNT_BLANK = "<AWS account id>"
GCP_PROJECT_BLANK = "<project number>"
# What a policy is derived with when its field is empty (the policy module takes only
# well-formed names); each blank then takes the place of its stand-in.
_AWS_STAND_IN = "000000000000"
_GCP_STAND_IN = "projects/0/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
_AWS_ACCOUNT = re.compile(r"\d{12}")
_SPLIT = re.compile(r"[\s,]+")


@page
async def try_it(request: Request, view: View) -> Response:
    asked = {
        name: request.query_params.get(name, default).strip() for name, default in DEFAULTS.items()
    }
    runs, _ = await section(view.api.get("/api/v1/runs", {"limit": 50}))
    result: dict[str, Any] = {}
    error: str | None = None
    if asked["run_id"]:
        template = [part for part in _SPLIT.split(asked["subject_template"]) if part]
        body = {
            "audience": asked["audience"],
            "duration": asked["duration"] or None,
            "subject_template": template or None,
        }
        preview, error = await section(
            view.api.post(
                f"/api/v1/runs/{quote(asked['run_id'], safe='')}/preview-token",
                {name: value for name, value in body.items() if value is not None},
            )
        )
        if preview is not None:
            result = _policies(preview, asked)
    return view.render(
        "try_it.html",
        asked=asked,
        runs=runs["items"] if runs else [],
        audiences=AUDIENCES,
        components=COMPONENTS,
        examples=EXAMPLES,
        result=result,
        error=error,
    )


def _policies(preview: dict[str, Any], asked: dict[str, str]) -> dict[str, Any]:
    from federation.policy import aws, gcp  # NOTE: CEL loads only when a page asks

    claims = preview["claims"]
    audience = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
    issuer = urlsplit(claims["iss"])
    account, provider = asked["aws_account"], asked["gcp_provider"]

    def provider_arn(account: str) -> str:
        return f"arn:aws:iam::{account}:oidc-provider/{issuer.netloc}{issuer.path}"

    result: dict[str, Any] = {
        "preview": preview,
        "header": json.dumps(preview["header"], indent=2),
        "claims": json.dumps(claims, indent=2),
        "aws_blank": not account,
        "gcp_blank": not provider,
    }
    try:
        if account and not _AWS_ACCOUNT.fullmatch(account):
            raise InvalidRequest("An AWS account id is 12 digits.")
        policy = aws.suggest(
            claims["sub"],
            provider_arn=provider_arn(account or _AWS_STAND_IN),
            audience=audience,
            session_tags="https://aws.amazon.com/tags" in claims,
        )
        if not account:
            policy["Statement"][0]["Principal"]["Federated"] = provider_arn(AWS_ACCOUNT_BLANK)
        result["aws"] = json.dumps(policy, indent=2)
    except FederationError as problem:
        result["aws_error"] = problem.message
    try:
        mapping = gcp.suggest(claims["sub"], provider_name=provider or _GCP_STAND_IN, claims=claims)
        if not provider:
            _blank_project(mapping)
        result["gcp"] = json.dumps(mapping, indent=2)
    except FederationError as problem:
        result["gcp_error"] = problem.message
    return result


def _blank_project(mapping: dict[str, Any]) -> None:
    """The blank project number where the stand-in's is: in the names of the provider,
    the member and the audience (the first ``projects/`` of each; the subject, which may
    hold anything, comes after it)."""
    stand_in, blank = "projects/0/", f"projects/{GCP_PROJECT_BLANK}/"
    for holder, key in ((mapping, "member"), (mapping, "audience"), (mapping["provider"], "name")):
        holder[key] = holder[key].replace(stand_in, blank, 1)
