"""A local stand-in for AWS STS ``AssumeRoleWithWebIdentity``, which boto3 talks to.

It speaks STS's query protocol (a form POST; XML answers and XML ``ErrorResponse``
bodies, as botocore parses them) and checks a token the way STS does before it answers:
a registered provider whose URL equals ``iss`` byte for byte, the signature through
discovery and JWKS with AWS's algorithms, ``aud`` among the provider's client IDs,
``exp`` (with the five minutes of clock skew AWS allows, as the tester does) and
``iat``, and the request's limits; then the role's trust policy decides, evaluated by
the policy tester (:func:`federation.policy.aws.evaluate_trust`), so that ``stand-in aws``
and ``policy test aws`` answer a token alike: StringLike and every other operator,
``sts:TagSession`` for a token with session tags, ``sts:SetSourceIdentity`` for one with
a source identity, explicit Deny. Refusals carry STS's codes and, where they are known,
its messages. Credentials are random and fake.

Not AWS: a role is given either a trust policy document or the one statement it stands
for (provider, ``sub`` pattern, TagSession: :meth:`Role.document`); nothing signs
requests, and the credentials work nowhere but in tests (moto accepts any). What AWS
does where its documentation is silent (the order of the checks, leeway on
``iat``/``nbf``, the error for a tag over the limits) is a guess, marked so.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation.clock import Clock, SystemClock
from federation.policy import aws
from federation.policy.aws_document import parse
from federation.policy.aws_token import EXPIRY_SKEW
from federation.policy.aws_warnings import ARWWI
from federation.stand_ins.aws_sts_requests import (
    StsError,
    audience_of,
    required,
    session_tags,
    validated,
)
from federation.stand_ins.issuers import AWS_ALGORITHMS, IssuerKeys, TokenRejected, verify_jwt

log = logging.getLogger("federation.stand_in.aws_sts")

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
TAGS_CLAIM = "https://aws.amazon.com/tags"
_ROLE_ARN = re.compile(
    r"arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)", re.ASCII
)
_UPPER = string.ascii_uppercase + string.digits
_STATUS = {"AccessDenied": 403, "RegionDisabledException": 403, "IDPRejectedClaim": 403}
NO_KEY = (
    "Couldn't retrieve verification key from your identity provider,  please reference "
    "AssumeRoleWithWebIdentity documentation for requirements"
)


@dataclass(frozen=True)
class OidcProvider:
    """An IAM OIDC identity provider: ``url`` is compared with ``iss`` byte for byte."""

    url: str
    client_ids: tuple[str, ...] = ("sts.amazonaws.com",)

    @property
    def host(self) -> str:
        """The provider's name in ARNs and condition keys: the URL without its scheme."""
        return self.url.split("://", 1)[-1]


@dataclass(frozen=True)
class Role:
    """A role and its trust policy: ``trust_policy`` when given (any document the policy
    tester evaluates), otherwise the one statement the shorthand stands for: allow
    AssumeRoleWithWebIdentity to ``provider`` (every registered one when None) when
    ``sub`` matches the StringLike pattern (any when None); ``tag_session`` adds
    ``sts:TagSession``."""

    arn: str
    sub: str | None = None
    provider: str | None = None
    tag_session: bool = False
    max_session_duration: int = 3600
    trust_policy: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not _ROLE_ARN.fullmatch(self.arn):
            raise ValueError(f"not a role ARN: {self.arn!r}")
        if self.trust_policy is not None:
            if self.sub is not None or self.provider is not None or self.tag_session:
                raise ValueError("a role takes a trust policy or sub/provider/tag_session")
            # NOTE: what IAM would refuse to save is refused here, with the tester's words.
            parse(self.trust_policy)

    @property
    def parts(self) -> tuple[str, str, str]:
        """(partition, account, role name)."""
        found = _ROLE_ARN.fullmatch(self.arn)
        if found is None:  # pragma: no cover - checked when made
            raise ValueError(f"not a role ARN: {self.arn!r}")
        partition, account, name = found.groups()
        return partition, account, name

    def provider_arn(self, provider_url: str) -> str:
        """The ARN of the IAM OIDC provider for ``provider_url`` in the role's account."""
        partition, account, _ = self.parts
        host = provider_url.split("://", 1)[-1]
        return f"arn:{partition}:iam::{account}:oidc-provider/{host}"

    def document(self, providers: Iterable[OidcProvider] = ()) -> dict[str, Any]:
        """The trust policy the role has: ``trust_policy``, or the statement its
        shorthand stands for (``providers``: the registered ones, for ``provider=None``)."""
        if self.trust_policy is not None:
            return dict(self.trust_policy)
        urls = [self.provider] if self.provider is not None else [p.url for p in providers]
        action = [ARWWI, aws.TAG_SESSION] if self.tag_session else ARWWI
        statements = []
        for url in urls:  # one statement each: a condition's keys are ANDed
            statement: dict[str, Any] = {
                "Effect": "Allow",
                "Principal": {"Federated": self.provider_arn(url)},
                "Action": action,
            }
            if self.sub is not None:
                key = f"{url.split('://', 1)[-1]}:sub"
                statement["Condition"] = {"StringLike": {key: _literal(self.sub)}}
            statements.append(statement)
        return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class AssumedSession:
    """What the stand-in granted, for tests to look at."""

    role_arn: str
    session_name: str
    subject: str
    audience: str
    provider: str
    duration_seconds: int
    access_key_id: str
    assumed_role_arn: str
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()


def _literal(pattern: str) -> str:
    # NOTE: the shorthand's pattern has only the two wildcards; in version 2012-10-17
    # `${...}` would be a policy variable, and `${$}` is IAM's escape for a `$`.
    return pattern.replace("$", "${$}") if "${" in pattern else pattern


class AwsSts:
    """The stand-in's state: registered providers and roles, and granted sessions."""

    def __init__(
        self,
        providers: Iterable[OidcProvider],
        roles: Iterable[Role],
        *,
        clock: Clock | None = None,
        keys: IssuerKeys | None = None,
    ) -> None:
        self.providers = {provider.url: provider for provider in providers}
        self.roles = {role.arn: role for role in roles}
        # What each role's trust policy is, as the tester evaluates it.
        self.trust_policies = {
            arn: role.document(self.providers.values()) for arn, role in self.roles.items()
        }
        self.clock = clock or SystemClock()
        self.keys = keys or IssuerKeys()
        self.sessions: list[AssumedSession] = []

    def assume_role_with_web_identity(self, form: Mapping[str, str]) -> tuple[str, AssumedSession]:
        """The XML answer and what was granted; :class:`StsError` when STS would refuse."""
        role_arn, name, token = (
            required(form, key) for key in ("RoleArn", "RoleSessionName", "WebIdentityToken")
        )
        duration, policy, policy_arns = validated(form, role_arn, name, token)
        provider, claims = self._verified(token)
        audience = audience_of(claims, provider.client_ids)
        subject = str(claims.get("sub", ""))
        tags, transitive = session_tags(claims.get(TAGS_CLAIM))
        role = self.roles.get(role_arn)
        # A missing role and an untrusting one answer alike, as on AWS.
        if role is None or not self._trusted(role, provider, claims):
            raise StsError(
                "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        if duration > role.max_session_duration:
            raise StsError(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )
        packed = len(policy or "") + sum(map(len, policy_arns)) + len(json.dumps(tags))
        if packed > 2048:  # a guess at AWS's packed size: the plaintext limit
            raise StsError(
                "PackedPolicyTooLarge",
                "Packed size of session policies and session tags exceeds the limit.",
            )
        partition, account, role_name = role.parts
        assumed = f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{name}"
        now = self.clock.now()
        expiration = (now + timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ")
        key_id = "ASIA" + "".join(secrets.choice(_UPPER) for _ in range(16))
        session = AssumedSession(
            role_arn=role_arn,
            session_name=name,
            subject=subject,
            audience=audience,
            provider=provider.url,
            duration_seconds=duration,
            access_key_id=key_id,
            assumed_role_arn=assumed,
            policy=policy,
            policy_arns=policy_arns,
            tags=tags,
            transitive_tag_keys=transitive,
        )
        self.sessions.append(session)
        role_id = "AROA" + "".join(secrets.choice(_UPPER) for _ in range(17))
        result = {
            "Credentials": {
                "AccessKeyId": key_id,
                "SecretAccessKey": secrets.token_urlsafe(30),
                "SessionToken": "FwoGZXIvYXdzE" + secrets.token_urlsafe(180),
                "Expiration": expiration,
            },
            "SubjectFromWebIdentityToken": subject,
            "AssumedRoleUser": {"AssumedRoleId": f"{role_id}:{name}", "Arn": assumed},
            "PackedPolicySize": str(min(100, packed * 100 // 2048)),
            "Provider": role.provider_arn(provider.url),
            "Audience": audience,
        }
        body = f"<AssumeRoleWithWebIdentityResult>{_xml(result)}</AssumeRoleWithWebIdentityResult>"
        return _document("AssumeRoleWithWebIdentityResponse", body, metadata=True), session

    def _trusted(self, role: Role, provider: OidcProvider, claims: Mapping[str, Any]) -> bool:
        """The trust policy's decision, by the policy tester's rules."""
        evaluation = aws.evaluate_trust(
            self.trust_policies[role.arn],
            claims,
            provider_arn=role.provider_arn(provider.url),
            now=self.clock.now(),
        )
        if not evaluation.allowed:
            log.info("%s does not trust the token: %s", role.arn, evaluation.reason)
        return evaluation.allowed

    def _verified(self, token: str) -> tuple[OidcProvider, dict[str, Any]]:
        try:
            verified = verify_jwt(
                token,
                self.keys,
                algorithms=AWS_ALGORITHMS,
                issuers=lambda issuer: issuer in self.providers,
                now=self.clock.now().timestamp(),
                # NOTE: the leeway applies to iat/nbf too, where AWS documents none: a guess.
                leeway=int(EXPIRY_SKEW.total_seconds()),
            )
        except TokenRejected as rejected:
            raise _rejection(rejected, token, self.providers, self.clock) from rejected
        return self.providers[verified.claims["iss"]], verified.claims


def _rejection(
    rejected: TokenRejected, token: str, providers: Mapping[str, OidcProvider], clock: Clock
) -> StsError:
    """STS's answer to a token it would not take."""
    from federation.keys.verify import decode

    claims = decode(token).claims if rejected.reason != TokenRejected.MALFORMED else {}
    issuer = claims.get("iss")
    if rejected.reason == TokenRejected.MALFORMED:
        return StsError("InvalidIdentityToken", "The ID token provided is not a valid JWT.")
    if rejected.reason == TokenRejected.ISSUER and issuer not in providers:
        return StsError(
            "InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {issuer}"
        )
    if rejected.reason in {TokenRejected.ISSUER, TokenRejected.UNREACHABLE}:
        return StsError("InvalidIdentityToken", NO_KEY)
    if rejected.reason == TokenRejected.EXPIRED:
        return StsError(
            "ExpiredTokenException",
            f"Token expired: current date/time {int(clock.now().timestamp())} must be before "
            f"the expiration date/time {claims.get('exp')}",
        )
    if rejected.reason == TokenRejected.ALGORITHM:
        return StsError("InvalidIdentityToken", "Unsupported signing algorithm in the token.")
    if rejected.reason == TokenRejected.TOO_EARLY:
        return StsError("InvalidIdentityToken", "The token is not yet valid (iat or nbf).")
    return StsError("InvalidIdentityToken", "The token's signature could not be verified.")


def _xml(value: Mapping[str, Any]) -> str:
    return "".join(
        f"<{key}>{_xml(item) if isinstance(item, Mapping) else escape(str(item))}</{key}>"
        for key, item in value.items()
    )


def _document(root: str, body: str, *, metadata: bool) -> str:
    request_id = str(uuid.uuid4())
    tail = (
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        if metadata
        else f"<RequestId>{request_id}</RequestId>"
    )
    return f'<{root} xmlns="{NAMESPACE}">{body}{tail}</{root}>\n'


def _error(code: str, message: str) -> Response:
    status = _STATUS.get(code, 400)
    body = _xml({"Error": {"Type": "Sender", "Code": code, "Message": message}})
    return Response(
        _document("ErrorResponse", body, metadata=False), status_code=status, media_type="text/xml"
    )


def aws_sts_app(
    providers: Iterable[OidcProvider],
    roles: Iterable[Role],
    *,
    clock: Clock | None = None,
    keys: IssuerKeys | None = None,
) -> Starlette:
    """The stand-in as an ASGI app; ``app.state.sts`` is its :class:`AwsSts` (what it
    granted is in ``app.state.sts.sessions``)."""
    sts = AwsSts(providers, roles, clock=clock, keys=keys)

    async def endpoint(request: Request) -> Response:
        body = (await request.body())[:65536].decode("utf-8", errors="replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        form.update(request.query_params)
        action, version = form.get("Action"), form.get("Version")
        if action != "AssumeRoleWithWebIdentity" or version != VERSION:
            return _error(
                "InvalidAction", f"Could not find operation {action} for version {version}"
            )
        try:
            answer, granted = await run_in_threadpool(sts.assume_role_with_web_identity, form)
        except StsError as error:
            log.info("AssumeRoleWithWebIdentity refused: %s: %s", error.code, error.message)
            return _error(error.code, error.message)
        log.info(
            "AssumeRoleWithWebIdentity: %s as %s for sub %s",
            granted.role_arn,
            granted.session_name,
            granted.subject,
        )
        return Response(answer, media_type="text/xml")

    app = Starlette(routes=[Route("/", endpoint, methods=["POST", "GET"])])
    app.state.sts = sts
    return app
