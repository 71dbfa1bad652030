"""The stand-ins and the policy tester answer a token alike.

Every case of the corpus (``cases/*.json``) that maps onto a stand-in's configuration is
run twice: through the tester (``federation.policy``), and as a real token, signed here
with PyJWT by a key the stand-in trusts (a JWKS given whole, as an uploaded
``jwksJson`` is), presented to the stand-in's ASGI app in process at the case's time.
Both must allow, or both refuse; a policy the cloud would not save must be refused by
both (the tester: ``InvalidPolicy``; the stand-in, when it is configured: ``ValueError``).

A case maps onto a stand-in unless it needs something the stand-in cannot be told or a
token cannot carry; :func:`unmapped` says which and why, and the counts at the end make
sure the mapped cases stay many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.testclient import TestClient

from federation.clock import ManualClock
from federation.errors import InvalidPolicy
from federation.policy import aws, azure, gcp
from federation.policy.aws_document import provider_arn_parts
from federation.policy.gcp_names import IAM_PREFIXES
from federation.stand_ins.aws_sts import OidcProvider, Role, aws_sts_app
from federation.stand_ins.entra import FederatedCredential, entra_app
from federation.stand_ins.gcp_sts import Provider, gcp_sts_app
from federation.stand_ins.issuers import StaticKeys

CASES = Path(__file__).parent / "cases"
ACCOUNT = "123456789012"
TENANT = "8f0c1d2e-3a4b-4c5d-9e6f-7a8b9c0d1e2f"
CLIENT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SERVICE_ACCOUNT = "deployer@acme-prod.iam.gserviceaccount.com"
KEYS: dict[str, Any] = {
    "ec-1": ec.generate_private_key(ec.SECP256R1()),
    "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
JWKS = {
    "keys": [
        {
            **(
                ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
                if kid.startswith("ec")
                else RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            ),
            "kid": kid,
            "use": "sig",
        }
        for kid, key in KEYS.items()
    ]
}
ALLOW, DENY, INVALID = "allow", "deny", "invalid"


def load() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(CASES.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            found.append((f"{path.stem}: {case['name']}", case))
    return found


ALL = load()


def sign(case: dict[str, Any]) -> str:
    """The case's claims as a token: signed as the case's header says, or as the cloud's
    tokens usually are (RS256 for Entra, which takes only that; ES256 otherwise); with a
    kid unless the case's header is one without it."""
    cloud = next(c for c in ("aws", "gcp", "azure") if c in case)
    header = case[cloud].get("header")
    claims = case["claims"]
    alg = (header or {}).get("alg", "RS256" if cloud == "azure" else "ES256")
    kid = "ec-1" if str(alg).startswith("ES") else "rsa-1"
    headers = {"kid": kid} if header is None or "kid" in header else {}
    return jwt.encode(dict(claims), KEYS[kid], algorithm=alg, headers=headers)


def moment(case: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(case["now"].replace("Z", "+00:00"))


def unmapped(case: dict[str, Any]) -> str | None:
    """Why the case cannot be put to a stand-in, or None when it can."""
    claims = case["claims"]
    if not all(type(claims.get(name)) is int for name in ("iat", "exp")):
        # The stand-ins take only a JWT with integer iat and exp (the clouds require both).
        return "the token has no integer iat or exp"
    if not isinstance(claims.get("iss"), str) or not claims["iss"].startswith("https://"):
        return "the token's issuer is no https URL a provider can be registered for"
    header = case[next(c for c in ("aws", "gcp", "azure") if c in case)].get("header")
    if header is not None and header.get("alg") not in ("ES256", "RS256", "RS384"):
        return "a token cannot be signed with the header's algorithm here"
    if "aws" in case:
        if "client_ids" in case["aws"] and case["aws"]["client_ids"] is None:
            return "the stand-in always checks the provider's client IDs"
        return None
    if "gcp" in case:
        provider = case["gcp"]["provider"]
        if provider.get("disabled") or provider.get("state") not in (None, "ACTIVE"):
            return "the stand-in's providers have no state: each is active"
        if not isinstance(provider.get("oidc"), dict):
            return "the stand-in serves OIDC providers only"
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1:
            # NOTE: GCP documents one audience; the tester promises nothing for several,
            # the stand-in takes the token when one of them is accepted.
            return "the token names several audiences"
        return None
    credential = case["azure"]["credential"]
    if not isinstance(credential.get("audiences"), list) or len(credential["audiences"]) != 1:
        return "a stand-in credential has exactly one audience by construction"
    return None


MAPPED = [(name, case) for name, case in ALL if unmapped(case) is None]


# ---- the tester --------------------------------------------------------------------------


def by_tester(case: dict[str, Any], token: str) -> str:
    """The tester's answer for the token the stand-in is shown."""
    decoded = jwt.api_jws.get_unverified_header(token)
    claims = case["claims"]
    try:
        if "aws" in case:
            spec = case["aws"]
            evaluation = aws.evaluate(
                spec["trust_policy"],
                claims,
                provider_arn=spec.get("provider_arn"),
                client_ids=tuple(spec.get("client_ids", ("sts.amazonaws.com",))),
                now=moment(case),
            )
        elif "gcp" in case:
            spec = case["gcp"]
            evaluation = gcp.evaluate(
                spec["provider"],
                claims,
                member=spec.get("member"),
                header=decoded,
                now=moment(case),
            )
        else:
            spec = case["azure"]
            evaluation = azure.evaluate(
                spec["credential"], claims, header=decoded, now=moment(case)
            )
    except InvalidPolicy:
        return INVALID
    return ALLOW if evaluation.allowed else DENY


# ---- the stand-ins -----------------------------------------------------------------------


@dataclass
class Answer:
    decision: str
    detail: str = ""


def in_process(app: Starlette) -> TestClient:
    """The stand-in's ASGI app, driven in process (no socket, nothing to stop)."""
    return TestClient(app, base_url="http://127.0.0.1")


def aws_stand_in(case: dict[str, Any], token: str) -> Answer:
    spec = case["aws"]
    claims = case["claims"]
    parts = provider_arn_parts(spec["provider_arn"]) if spec.get("provider_arn") else None
    if parts is not None:
        partition, account, host = parts
        url = f"https://{host}"
    else:
        # Any account's provider for the issuer: the role is in the account the trust
        # policy names (the provider is in the role's account, as IAM requires).
        url, partition = claims["iss"], "aws"
        named = [
            found
            for statement in _statements(spec["trust_policy"])
            for arn in _federated(statement)
            if (found := provider_arn_parts(arn)) is not None and f"https://{found[2]}" == url
        ]
        account = named[0][1] if named else ACCOUNT
    role_arn = f"arn:{partition}:iam::{account}:role/agree"
    try:
        role = Role(role_arn, trust_policy=spec["trust_policy"])
    except ValueError as exc:
        return Answer(INVALID, str(exc))
    provider = OidcProvider(url, tuple(spec.get("client_ids", ("sts.amazonaws.com",))))
    app = aws_sts_app([provider], [role], clock=ManualClock(moment(case)), keys=StaticKeys(JWKS))
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": role_arn,
        "RoleSessionName": "agree",
        "WebIdentityToken": token,
    }
    with in_process(app) as client:
        response = client.post("/", data=form)
    return Answer(ALLOW if response.status_code == 200 else DENY, response.text)


def _statements(document: Any) -> list[Any]:
    raw = document.get("Statement") if isinstance(document, dict) else None
    return raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []


def _federated(statement: Any) -> list[str]:
    principal = statement.get("Principal") if isinstance(statement, dict) else None
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    names = federated if isinstance(federated, list) else [federated]
    return [name for name in names if isinstance(name, str)]


def gcp_stand_in(case: dict[str, Any], token: str) -> Answer:
    spec = case["gcp"]
    document = spec["provider"]
    name = str(document.get("name"))
    for prefix in IAM_PREFIXES:
        name = name.removeprefix(prefix)
    oidc = document["oidc"]
    try:
        provider = Provider(
            name=f"{IAM_PREFIXES[0]}{name}",
            issuer_uri=oidc.get("issuerUri"),
            allowed_audiences=tuple(oidc.get("allowedAudiences") or ()),
            condition=document.get("attributeCondition"),
            attribute_mapping=document.get("attributeMapping") or {},
        )
    except ValueError as exc:
        return Answer(INVALID, str(exc))
    member = spec.get("member")
    bindings = {SERVICE_ACCOUNT: [member]} if member else {}
    app = gcp_sts_app([provider], bindings, clock=ManualClock(moment(case)), keys=StaticKeys(JWKS))
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": provider.name,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    }
    with in_process(app) as client:
        response = client.post("/v1/token", data=form)
        if response.status_code != 200 or not member:
            return Answer(ALLOW if response.status_code == 200 else DENY, response.text)
        # The member check is IAM's: impersonating the service account bound to it.
        federated = response.json()["access_token"]
        response = client.post(
            f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken",
            json={"scope": ["https://www.googleapis.com/auth/cloud-platform"]},
            headers={"Authorization": f"Bearer {federated}"},
        )
    return Answer(ALLOW if response.status_code == 200 else DENY, response.text)


def azure_stand_in(case: dict[str, Any], token: str) -> Answer:
    document = case["azure"]["credential"]
    credential = FederatedCredential(
        client_id=CLIENT,
        issuer=document.get("issuer"),
        subject=document.get("subject"),
        audience=document["audiences"][0],
    )
    app = entra_app(TENANT, [credential], keys=StaticKeys(JWKS), clock=ManualClock(moment(case)))
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "scope": "https://management.azure.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    with in_process(app) as client:
        response = client.post(f"/{TENANT}/oauth2/v2.0/token", data=form)
    return Answer(ALLOW if response.status_code == 200 else DENY, response.text)


def by_stand_in(case: dict[str, Any], token: str) -> Answer:
    if "aws" in case:
        return aws_stand_in(case, token)
    if "gcp" in case:
        return gcp_stand_in(case, token)
    return azure_stand_in(case, token)


# ---- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", [case for _, case in MAPPED], ids=[name for name, _ in MAPPED])
def test_the_stand_in_answers_as_the_tester_does(case: dict[str, Any]) -> None:
    token = sign(case)
    expected = by_tester(case, token)
    answered = by_stand_in(case, token)
    assert answered.decision == expected, (case["name"], answered.detail)


def test_the_shared_cases_are_many() -> None:
    """Most of the corpus runs through both: sub/aud operators on AWS, attribute
    mappings and conditions on GCP, issuer/subject/audience on Azure."""
    per_cloud = {c: sum(c in case for _, case in MAPPED) for c in ("aws", "gcp", "azure")}
    assert per_cloud["aws"] >= 120, per_cloud
    assert per_cloud["gcp"] >= 40, per_cloud
    assert per_cloud["azure"] >= 15, per_cloud
    names = {name.split(":")[0] for name, _ in MAPPED}
    assert {"aws_operators", "aws_subjects", "gcp_conditions", "gcp_mapping", "azure"} <= names
    decisions = {by_tester(case, sign(case)) for _, case in MAPPED if "aws" in case}
    assert decisions == {ALLOW, DENY, INVALID}
