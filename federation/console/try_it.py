"""Try it: the claims a run's token would carry (a dry run; nothing is signed), and the
AWS trust policy and GCP provider mapping that admit exactly its subject.

The claims come from ``POST /api/v1/runs/{run_id}/preview-token``; the policies are
derived from them by :mod:`federation.policy`, as ``federation policy suggest`` does.
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
from federation.errors import FederationError

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
    "aws_account": "111122223333",
    "gcp_provider": (
        "projects/123456789012/locations/global/workloadIdentityPools/oz/providers/federation"
    ),
}
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
        result=result,
        error=error,
    )


def _policies(preview: dict[str, Any], asked: dict[str, str]) -> dict[str, Any]:
    from federation.policy import aws, gcp  # NOTE: CEL loads only when a page asks

    claims = preview["claims"]
    audience = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
    issuer = urlsplit(claims["iss"])
    provider_arn = f"arn:aws:iam::{asked['aws_account']}:oidc-provider/{issuer.netloc}{issuer.path}"
    result: dict[str, Any] = {
        "preview": preview,
        "header": json.dumps(preview["header"], indent=2),
        "claims": json.dumps(claims, indent=2),
    }
    try:
        policy = aws.suggest(
            claims["sub"],
            provider_arn=provider_arn,
            audience=audience,
            session_tags="https://aws.amazon.com/tags" in claims,
        )
        result["aws"] = json.dumps(policy, indent=2)
    except FederationError as problem:
        result["aws_error"] = problem.message
    try:
        mapping = gcp.suggest(claims["sub"], provider_name=asked["gcp_provider"], claims=claims)
        result["gcp"] = json.dumps(mapping, indent=2)
    except FederationError as problem:
        result["gcp_error"] = problem.message
    return result
