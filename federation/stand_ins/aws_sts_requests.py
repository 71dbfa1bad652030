"""What STS checks of an ``AssumeRoleWithWebIdentity`` request before its trust policy:
the request's own limits and the parts of the token it reads (audience, session tags),
with STS's error codes and messages. The value of a refused member is never echoed (the
token is sensitive; so may a mistake be)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[\w+=,.@/-]+", re.ASCII)
POLICY_TEXT = re.compile(r"[\t\n\r\x20-\xff]+")
TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")


class StsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def required(form: Mapping[str, str], key: str) -> str:
    value = form.get(key)
    if not value:
        member = key[0].lower() + key[1:]
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value null at '{member}' failed to satisfy "
            "constraint: Member must not be null",
        )
    return value


def invalid(member: str, constraint: str) -> StsError:
    # NOTE: the value is never echoed (the token is sensitive; so may a mistake be).
    return StsError(
        "ValidationError",
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
        f"Member must {constraint}",
    )


def validated(
    form: Mapping[str, str], role_arn: str, name: str, token: str
) -> tuple[int, str | None, tuple[str, ...]]:
    """The request's own limits (STS checks them before the token)."""
    if not 20 <= len(role_arn) <= 2048:
        raise invalid("roleArn", "have length between 20 and 2048")
    if not SESSION_NAME.fullmatch(name):
        raise invalid("roleSessionName", r"satisfy regular expression pattern: [\w+=,.@-]*")
    if not 4 <= len(token) <= 20000:
        raise invalid("webIdentityToken", "have length between 4 and 20000")
    text = form.get("DurationSeconds") or "3600"
    if not text.isdigit() or not 900 <= int(text) <= 43200:
        raise invalid("durationSeconds", "have value between 900 and 43200")
    policy = form.get("Policy")
    if policy is not None:
        if not 1 <= len(policy) <= 2048 or not POLICY_TEXT.fullmatch(policy):
            raise invalid("policy", "have length between 1 and 2048")
        try:
            document = json.loads(policy)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "Statement" not in document:
            raise StsError("MalformedPolicyDocument", "Syntax errors in policy.")
    arns = tuple(
        form[key]
        for key in sorted(form, key=lambda k: int(k.split(".")[2]) if k.count(".") == 3 else 0)
        if re.fullmatch(r"PolicyArns\.member\.[0-9]+\.arn", key)
    )
    if len(arns) > 10:
        raise invalid("policyArns", "have length less than or equal to 10")
    for arn in arns:
        if not POLICY_ARN.fullmatch(arn):
            raise StsError("ValidationError", "The policy ARN is not a valid managed policy ARN.")
    return int(text), policy, arns


def audience_of(claims: Mapping[str, Any], client_ids: Collection[str]) -> str:
    """The token's audience that is one of the provider's ``client_ids``."""
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    for value in audiences:
        if isinstance(value, str) and value in client_ids:
            return value
    raise StsError("InvalidIdentityToken", "Incorrect token audience")


def session_tags(claim: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """The session tags of the ``https://aws.amazon.com/tags`` claim, within AWS's limits
    (which error AWS gives for a tag over them is a guess: ValidationError)."""
    if claim is None:
        return {}, ()
    principal_tags = claim.get("principal_tags") if isinstance(claim, dict) else None
    transitive = claim.get("transitive_tag_keys", []) if isinstance(claim, dict) else None
    if not isinstance(principal_tags, dict) or not isinstance(transitive, list):
        raise StsError("InvalidIdentityToken", "The session tags claim is not valid.")
    tags: dict[str, str] = {}
    for key, values in principal_tags.items():
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise StsError("InvalidIdentityToken", "Session tags must have a single value.")
        tags[key] = values[0]
    if len(tags) > 50:
        raise invalid("tags", "have length less than or equal to 50")
    for key, value in tags.items():
        if not (1 <= len(key) <= 128 and TAG_TEXT.fullmatch(key)) or key.lower().startswith("aws:"):
            raise invalid("tags.member.key", "be a tag key of 1 to 128 allowed characters")
        if len(value) > 256 or not TAG_TEXT.fullmatch(value):
            raise invalid("tags.member.value", "be a tag value of up to 256 allowed characters")
    if not all(isinstance(key, str) and key in tags for key in transitive):
        raise invalid("transitiveTagKeys", "name session tags")
    return tags, tuple(transitive)
