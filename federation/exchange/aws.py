"""AWS: trade a run's token for role credentials at STS (AssumeRoleWithWebIdentity).

:func:`credentials` mints a fresh token for ``sts.amazonaws.com`` and calls STS itself,
so it can pass what botocore's web identity provider cannot (duration, session
policies). :class:`WebIdentityTokenFile` keeps the file ``AWS_WEB_IDENTITY_TOKEN_FILE``
names for the SDKs' default chain, which re-reads it on every refresh: it is replaced
atomically, and :func:`keep_fresh` rewrites it at about half of each token's lifetime.

STS's refusals become :class:`FederationError`s that say what to check, with STS's code
in ``extensions["upstream"]``; neither the token nor credentials ever appear in one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from federation._internal.urls import is_loopback
from federation.errors import (
    ConfigurationError,
    FederationError,
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceUnavailable,
)
from federation.exchange.source import TokenSource

AUDIENCE = "sts.amazonaws.com"
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 900, 43200, 3600
MAX_POLICY_ARNS, MAX_POLICY_LENGTH = 10, 2048
# A token for one exchange need only outlive it; the token file outlives many sessions
# (botocore re-reads it), so it gets Oz's 3h, which the issuer caps to its maximum.
EXCHANGE_TOKEN_DURATION = "15m"  # noqa: S105 - a duration
SUBJECT_TEMPLATE = ("scoped_principal",)

_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[\w+=,.@/-]+", re.ASCII)
_POLICY_TEXT = re.compile(r"[\t\n\r\x20-\xff]+")
_JWT_LIKE = re.compile(r"eyJ[\w-]{8,}")


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    assumed_role_arn: str | None = None

    def as_credential_process(self) -> dict[str, Any]:
        """What a ``credential_process`` prints (Version 1). Always with an expiration:
        without one the SDKs never run the process again."""
        document: dict[str, Any] = {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": _iso(self.expiration),
        }
        account = (self.assumed_role_arn or "").split(":")  # arn:aws:sts::<account>:...
        if len(account) > 5 and account[4].isdigit():
            document["AccountId"] = account[4]
        return document

    def as_env(self) -> dict[str, str]:
        """The environment variables every AWS SDK and the AWS CLI read first."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_CREDENTIAL_EXPIRATION": _iso(self.expiration),
        }

    def as_ini(self, profile: str = "default") -> str:
        """A profile block for a shared credentials file (``~/.aws/credentials``)."""
        return (
            f"[{profile}]\n# expires {_iso(self.expiration)}\n"
            f"aws_access_key_id = {self.access_key_id}\n"
            f"aws_secret_access_key = {self.secret_access_key}\n"
            f"aws_session_token = {self.session_token}\n"
        )


def validate_session_name(name: str) -> str:
    """``name`` when STS takes it as RoleSessionName: 2 to 64 of ``[A-Za-z0-9_+=,.@-]``."""
    if not _SESSION_NAME.fullmatch(name):
        # NOTE: the name is not echoed: a misplaced secret must not reach a log.
        raise InvalidRequest(
            "the AWS role session name must be 2 to 64 characters of letters, digits and "
            "_ + = , . @ - (no spaces)"
        )
    return name


def validate_role_arn(arn: str) -> str:
    """``arn`` when it names an IAM role (what AssumeRoleWithWebIdentity takes)."""
    if not _ROLE_ARN.fullmatch(arn):
        raise InvalidRequest(
            "the role ARN must look like arn:aws:iam::123456789012:role/name (the IAM role, "
            "not an assumed-role or instance-profile ARN)"
        )
    return arn


def default_session_name(run_id: str) -> str:
    """``Oz_Run_<run-id>``, the name Oz gives its sessions (CloudTrail shows it)."""
    return f"Oz_Run_{run_id}"


def sts_client(
    region: str | None = None,
    endpoint_url: str | None = None,
    *,
    max_attempts: int | None = None,
    timeout: float = 10.0,
) -> Any:
    """An unsigned STS client (AssumeRoleWithWebIdentity needs no AWS credentials, so none
    are looked for). Without ``endpoint_url`` botocore finds it, ``AWS_ENDPOINT_URL_STS``
    included; retries are botocore's standard ones (``AWS_MAX_ATTEMPTS``, default 3)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    retries: Any = {"mode": "standard"}
    if max_attempts is not None:  # attempts in all, as AWS_MAX_ATTEMPTS counts them
        retries["total_max_attempts"] = max_attempts
    config = Config(
        signature_version=UNSIGNED,
        connect_timeout=min(timeout, 5.0),
        read_timeout=timeout,
        retries=retries,
    )
    try:
        session = boto3.session.Session()
        region = region or session.region_name or "us-east-1"
        client = session.client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise ConfigurationError(f"cannot make an AWS STS client ({type(exc).__name__})") from exc
    endpoint = client.meta.endpoint_url
    parts = urlsplit(endpoint)
    insecure = os.environ.get("FEDERATION_INSECURE_HTTP") == "1"
    if parts.scheme != "https" and not is_loopback(parts.hostname) and not insecure:
        # NOTE: the request carries the token, a bearer credential for the role.
        raise ConfigurationError(
            f"refusing to send a token to the STS endpoint {endpoint} over plain http: "
            "use https, or set FEDERATION_INSECURE_HTTP=1 on a network you trust"
        )
    return client


def assume_role(
    token: str,
    *,
    role_arn: str,
    session_name: str,
    duration_seconds: int = DEFAULT_DURATION,
    policy: str | None = None,
    policy_arns: Sequence[str] = (),
    tags_sent: bool = False,
    client: Any,
) -> AwsCredentials:
    """AssumeRoleWithWebIdentity with ``token``; ``tags_sent`` says the token carries
    session tags (so a refusal mentions ``sts:TagSession``)."""
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    _check(role_arn, session_name, duration_seconds, policy, policy_arns)
    arguments: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": token,
        "DurationSeconds": duration_seconds,
    }
    if policy is not None:
        arguments["Policy"] = policy
    if policy_arns:
        arguments["PolicyArns"] = [{"arn": arn} for arn in policy_arns]
    endpoint = client.meta.endpoint_url
    try:
        answer = client.assume_role_with_web_identity(**arguments)
    except ClientError as exc:
        raise _sts_error(
            exc.response,
            token,
            role_arn=role_arn,
            duration=duration_seconds,
            tags_sent=tags_sent,
            region=client.meta.region_name,
        ) from exc
    except ParamValidationError as exc:
        raise InvalidRequest("the token must be 4 to 20000 characters for AWS STS") from exc
    except BotoCoreError as exc:
        raise ResourceUnavailable(
            f"cannot reach AWS STS at {endpoint} ({type(exc).__name__}); check the network, "
            "AWS_REGION and AWS_ENDPOINT_URL_STS (or --sts-endpoint)",
            extensions=_upstream("unreachable"),
        ) from exc
    found, user = answer["Credentials"], answer.get("AssumedRoleUser") or {}
    return AwsCredentials(
        access_key_id=found["AccessKeyId"],
        secret_access_key=found["SecretAccessKey"],
        session_token=found["SessionToken"],
        expiration=found["Expiration"].astimezone(UTC),
        assumed_role_arn=user.get("Arn"),
    )


def credentials(
    source: TokenSource,
    *,
    role_arn: str,
    session_name: str | None = None,
    duration_seconds: int = DEFAULT_DURATION,
    policy: str | None = None,
    policy_arns: Sequence[str] = (),
    aws_session_tags: Sequence[str] | None = None,
    subject_template: Sequence[str] = SUBJECT_TEMPLATE,
    client: Any,
) -> AwsCredentials:
    """Credentials for ``role_arn``: a fresh token for ``sts.amazonaws.com`` from
    ``source``, traded at STS. The session name defaults to ``Oz_Run_<run-id>``."""
    name = session_name if session_name is not None else default_session_name(source.run_id)
    _check(role_arn, name, duration_seconds, policy, policy_arns)  # before minting
    minted = source.mint(
        AUDIENCE,
        duration=EXCHANGE_TOKEN_DURATION,
        subject_template=subject_template,
        aws_session_tags=aws_session_tags,
    )
    return assume_role(
        minted.token,
        role_arn=role_arn,
        session_name=name,
        duration_seconds=duration_seconds,
        policy=policy,
        policy_arns=policy_arns,
        tags_sent=bool(aws_session_tags),
        client=client,
    )


def _check(
    role_arn: str, session_name: str, duration: int, policy: str | None, arns: Sequence[str]
) -> None:
    """What STS would refuse as a ValidationError, refused here first, with a reason."""
    validate_role_arn(role_arn)
    validate_session_name(session_name)
    if type(duration) is not int or not MIN_DURATION <= duration <= MAX_DURATION:
        raise InvalidRequest(
            f"the AWS session duration must be {MIN_DURATION} to {MAX_DURATION} seconds "
            "(15 minutes to 12 hours), and at most the role's MaxSessionDuration"
        )
    if policy is not None and not (
        len(policy) <= MAX_POLICY_LENGTH and policy.strip() and _POLICY_TEXT.fullmatch(policy)
    ):
        raise InvalidRequest(
            f"the inline session policy must be 1 to {MAX_POLICY_LENGTH} characters of JSON "
            "(tab, newline and U+0020 to U+00FF only)"
        )
    if len(arns) > MAX_POLICY_ARNS or not all(_POLICY_ARN.fullmatch(arn) for arn in arns):
        raise InvalidRequest(
            f"pass at most {MAX_POLICY_ARNS} managed session policy ARNs, each like "
            "arn:aws:iam::123456789012:policy/name or arn:aws:iam::aws:policy/name"
        )


# ---- what STS answered, as an error that says what to check -----------------------------


def _upstream(code: str) -> dict[str, Any]:
    return {"upstream": {"service": "aws-sts", "code": code}}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_TAG_SESSION = (
    "; the token carries session tags, so the trust policy must also allow sts:TagSession"
)
_TRUST = (
    "role {role} does not trust this token (or does not exist): its trust policy must "
    "allow sts:AssumeRoleWithWebIdentity for the federated principal "
    "arn:aws:iam::{account}:oidc-provider/{host} with {host}:aud = {aud} and a {host}:sub "
    "condition matching {sub!r} (StringLike for * patterns){tags}"
)
# (code, a word of STS's message or "") → (class, what to check); first match wins.
_EXPLAINED: tuple[tuple[str, str, type[FederationError], str], ...] = (
    ("InvalidIdentityToken", "No OpenIDConnect provider", NotAuthorized,
     "the account has no IAM OIDC identity provider for the token's issuer {iss}; the "
     "provider's URL must equal the token's iss byte for byte (scheme, host, path, no "
     "trailing slash), in the role's account"),
    ("InvalidIdentityToken", "audience", NotAuthorized,
     "the token's audience {aud} is not a client ID of the IAM OIDC provider {host}; add "
     "it to the provider's client IDs (audiences)"),
    ("InvalidIdentityToken", "verification key", ResourceUnavailable,
     "STS could not fetch the signing keys of {iss}: its /.well-known/openid-configuration "
     "and jwks_uri must be reachable from the internet over https with a publicly trusted "
     "certificate and answer within 5 seconds; try again if they are"),
    ("InvalidIdentityToken", "", NotAuthorized,
     "the token did not validate{said}; it must be signed RS256/384/512 or ES256/384/512 "
     "with a key in the JWKS of {iss}"),
    ("IDPCommunicationError", "", ResourceUnavailable,
     "STS could not reach the identity provider {iss}; usually passing, so try again; if it "
     "persists, check that the issuer is reachable from AWS"),
    ("ExpiredTokenException", "", NotAuthorized,
     "the token had expired when STS checked it; mint a fresh token for each exchange (keep "
     "a token file fresh with --keep-fresh) and check this machine's and the issuer's clocks"),
    ("AccessDenied", "", NotAuthorized, _TRUST),
    ("IDPRejectedClaim", "", NotAuthorized, _TRUST),
    ("ValidationError", "DurationSeconds", InvalidRequest,
     "{duration}s is more than the role's MaxSessionDuration; ask for less or raise the "
     "role's maximum session duration (up to 12 hours)"),
    ("MalformedPolicyDocument", "", InvalidRequest,
     "the inline session policy is not a valid IAM policy{said}"),
    ("PackedPolicyTooLarge", "", InvalidRequest,
     "the session policies and session tags together are over AWS's packed size limit; "
     "shorten the inline policy, or pass fewer policy ARNs or session tags"),
    ("RegionDisabledException", "", OperationNotSupported,
     "STS is not activated in region {region}; activate it in the account's IAM settings, "
     "or use another region (AWS_REGION)"),
)  # fmt: skip


def _sts_error(
    response: dict[str, Any],
    token: str,
    *,
    role_arn: str,
    duration: int,
    tags_sent: bool,
    region: str | None,
) -> FederationError:
    """STS's refusal, explained with what was asked."""
    found = response.get("Error") or {}
    code, message = str(found.get("Code") or "Unknown"), str(found.get("Message") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 400)
    # NOTE: STS's own words only when they cannot carry the token or another secret.
    unsafe = len(message) > 300 or token in message or _JWT_LIKE.search(message)
    said = "" if unsafe else f": {message.rstrip('.')}"
    from federation.keys.verify import decode  # joserfc loads only when used

    try:
        claims = decode(token).claims
    except FederationError:
        claims = {}
    issuer, audience = str(claims.get("iss", "?")), claims.get("aud", "?")
    fields = {
        "said": said,
        "iss": issuer,
        "host": issuer.split("://", 1)[-1],  # the prefix of the condition keys
        "aud": audience[0] if isinstance(audience, list) and len(audience) == 1 else audience,
        "sub": str(claims.get("sub", "?")),
        "role": role_arn,
        "account": (role_arn.split(":") + ["?"] * 5)[4],
        "duration": duration,
        "region": region,
        "tags": _TAG_SESSION if tags_sent else "",
    }
    kind: type[FederationError] = InvalidRequest
    detail = f"STS refused the request{said}"
    if status >= 500 or "Throttl" in code:
        kind, detail = ResourceUnavailable, f"STS answered HTTP {status}; try again later"
    for known, word, explained, explanation in _EXPLAINED:
        if code == known and word.lower() in message.lower():
            kind, detail = explained, explanation.format(**fields)
            break
    retryable = kind is ResourceUnavailable
    return kind(f"AWS STS {code}: {detail}", retryable=retryable, extensions=_upstream(code))
