"""The request context STS builds from a web identity token, and what a key names.

For a generic OIDC provider, AWS makes four claims condition keys, each prefixed with
the provider's name (its URL without ``https://``, path included, as in
``issuer.example.com/tenant:sub``): ``aud``, ``sub``, ``azp`` and ``amr``. Any other
claim is simply absent, which is why a condition on ``<provider>:email`` never matches
(and a negated one always does). Session tags from the ``https://aws.amazon.com/tags``
claim appear as ``aws:RequestTag/<key>``, their keys as ``aws:TagKeys``, the transitive
ones as ``sts:TransitiveTagKeys``; ``https://aws.amazon.com/source_identity`` as
``sts:SourceIdentity``. Every request also carries the global keys ``aws:CurrentTime``
(ISO 8601, UTC) and ``aws:EpochTime`` (seconds since the epoch), taken from the moment
the request is evaluated at. Context key names are case-insensitive; values are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from federation.domain.tokens import AWS_TAGS_CLAIM

SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
CLAIM_KEYS = ("aud", "sub", "azp", "amr")
_REQUEST_TAG = "aws:requesttag/"
CURRENT_TIME = "aws:CurrentTime"
EPOCH_TIME = "aws:EpochTime"
_TIME_KEYS = (CURRENT_TIME.lower(), EPOCH_TIME.lower())
_GLOBAL_PREFIXES = ("aws", "sts", "iam")


class KeyKind(StrEnum):
    CLAIM = "claim"  # <provider>:aud/sub/azp/amr
    IGNORED_CLAIM = "ignored claim"  # <provider>:<any other claim>: never in the request
    OTHER_PROVIDER = "other provider"  # another issuer's <host>:<claim>
    TAG = "session tag"  # aws:RequestTag/*, aws:TagKeys, sts:TransitiveTagKeys
    SOURCE_IDENTITY = "source identity"
    TIME = "time"  # aws:CurrentTime, aws:EpochTime: in every request
    UNKNOWN = "unknown"  # a key of the request the tester cannot see (aws:SourceIp...)


@dataclass(frozen=True)
class Key:
    """What a condition key names, for this token's provider."""

    written: str
    kind: KeyKind
    name: str = ""  # the claim or tag key, for messages


class MalformedToken(ValueError):
    """A claim STS would refuse the token for."""


@dataclass(frozen=True)
class RequestContext:
    """The context of one AssumeRoleWithWebIdentity call, keyed by lower-case key name."""

    provider: str  # issuer.example.com/path
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # lower-case key -> as AWS spells it

    def classify(self, key: str) -> Key:
        lowered = key.lower()
        prefix = f"{self.provider.lower()}:"
        if lowered.startswith(prefix):
            claim = key[len(prefix) :]
            kind = KeyKind.CLAIM if claim.lower() in CLAIM_KEYS else KeyKind.IGNORED_CLAIM
            return Key(key, kind, claim)
        if lowered.startswith(_REQUEST_TAG) or lowered in ("aws:tagkeys", "sts:transitivetagkeys"):
            return Key(key, KeyKind.TAG, key.split("/", 1)[-1])
        if lowered == "sts:sourceidentity":
            return Key(key, KeyKind.SOURCE_IDENTITY)
        if lowered in _TIME_KEYS:
            return Key(key, KeyKind.TIME)
        head, _, claim = key.rpartition(":")
        if head and head.lower() not in _GLOBAL_PREFIXES and ("." in head or "/" in head):
            return Key(key, KeyKind.OTHER_PROVIDER, claim)
        return Key(key, KeyKind.UNKNOWN)

    def lookup(self, key: str) -> tuple[str, ...] | None:
        """The request's values for ``key``; None when the key is not in the request."""
        return self.values.get(key.lower())

    def describe(self) -> dict[str, list[str]]:
        shown = {self.names.get(key, key): list(values) for key, values in self.values.items()}
        return dict(sorted(shown.items()))


def provider_name(issuer: str) -> str:
    """The provider's name in ARNs and condition keys: the issuer without its scheme."""
    for scheme in ("https://", "http://"):
        if issuer.startswith(scheme):
            return issuer[len(scheme) :]
    return issuer


def strings(value: Any) -> tuple[str, ...]:
    """A claim as the values of a key: one string, or each string of a list."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def session_tags(claims: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The session tags and transitive tag keys of the tags claim."""
    claim = claims.get(AWS_TAGS_CLAIM)
    if claim is None:
        return {}, ()
    if not isinstance(claim, dict):
        raise MalformedToken(f"the {AWS_TAGS_CLAIM} claim must be an object")
    principal_tags = claim.get("principal_tags", {})
    transitive = claim.get("transitive_tag_keys", [])
    if not isinstance(principal_tags, dict) or not isinstance(transitive, list):
        raise MalformedToken(
            f"the {AWS_TAGS_CLAIM} claim needs principal_tags (an object) and "
            "transitive_tag_keys (a list)"
        )
    tags: dict[str, str] = {}
    for key, values in principal_tags.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            # AWS: "You must pass a single value for each session tag."
            raise MalformedToken(f"session tag {key!r} must have exactly one string value")
        tags[str(key)] = values[0]
    return tags, tuple(str(key) for key in transitive)


def time_keys(now: datetime) -> dict[str, tuple[str, ...]]:
    """``aws:CurrentTime`` and ``aws:EpochTime`` at ``now`` (naive: UTC)."""
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC).replace(microsecond=0)
    return {
        CURRENT_TIME: (moment.strftime("%Y-%m-%dT%H:%M:%SZ"),),
        EPOCH_TIME: (str(int(moment.timestamp())),),
    }


def build(provider: str, claims: Mapping[str, Any], now: datetime | None = None) -> RequestContext:
    """The request context of ``claims`` presented to the provider named ``provider``
    at ``now`` (default: the current time)."""
    named: dict[str, tuple[str, ...]] = time_keys(now or datetime.now(UTC))
    for claim in CLAIM_KEYS:
        found = strings(claims.get(claim))
        if found:
            named[f"{provider}:{claim}"] = found
    tags, transitive = session_tags(claims)
    for key, value in tags.items():
        named[f"aws:RequestTag/{key}"] = (value,)
    if tags:
        named["aws:TagKeys"] = tuple(tags)
    if transitive:
        named["sts:TransitiveTagKeys"] = transitive
    source = claims.get(SOURCE_IDENTITY_CLAIM)
    source_identity = source if isinstance(source, str) and source else None
    if source_identity:
        named["sts:SourceIdentity"] = (source_identity,)
    values = {key.lower(): found for key, found in named.items()}
    names = {key.lower(): key for key in named}
    return RequestContext(provider, values, tags, source_identity, names)
