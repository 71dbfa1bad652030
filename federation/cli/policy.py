"""``federation policy test aws|gcp|azure`` and ``federation policy suggest aws|gcp``:
will a cloud accept this token, and which policy admits exactly this run's subject."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from federation.cli.common import GreedyCommand
from federation.cli.output import emit_json
from federation.domain.subjects import COMPONENTS
from federation.errors import InvalidPolicy
from federation.policy.claims import TokenFacts, from_file, from_token, load_json
from federation.policy.targets import (
    AWS_CLIENT_ID,
    AwsTrustPolicy,
    AzureCredential,
    GcpProvider,
    Target,
)

F = TypeVar("F", bound=Callable[..., Any])

READABLE = click.Path(exists=False, dir_okay=False, path_type=Path)


@click.group("policy")
def policy() -> None:
    """Test a token against a cloud's trust policy, or suggest one, offline.

    \b
      federation policy test aws --trust-policy trust.json --token "$TOKEN"
      federation policy suggest gcp --provider-name projects/N/.../providers/P \\
          --subject-template teams environment --run-attributes teams=t1 environment=prod
    """


@policy.group("test")
def test() -> None:
    """Predict whether a cloud accepts a token, and why not.

    Exit 0 allow, 1 deny, 2 a policy the cloud would refuse to save (or a usage error)."""


def token_options(function: F) -> F:
    for decorate in reversed(
        (
            click.option("--token", help="The token (JWT), or - to read it from stdin."),
            click.option(
                "--claims",
                "claims_file",
                type=READABLE,
                help="A JSON file of claims, or what `federation decode` prints.",
            ),
            click.option(
                "--at",
                "moment",
                type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
                help="Evaluate as of this time (ISO 8601, UTC unless given): the token's "
                "times, and AWS's aws:CurrentTime and aws:EpochTime. Default: now.",
            ),
            click.option(
                "--output",
                "--output-format",
                "output",
                type=click.Choice(("text", "json")),
                default="text",
                show_default=True,
                help="text for people, json for CI.",
            ),
        )
    ):
        function = decorate(function)
    return function


@test.command("aws")
@click.option(
    "--trust-policy", type=READABLE, required=True, help="The role's trust policy (JSON)."
)
@click.option(
    "--provider-arn",
    help="The IAM OIDC provider's ARN (arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH). "
    "Default: the token's issuer, in any account.",
)
@click.option(
    "--client-ids",
    default=AWS_CLIENT_ID,
    show_default=True,
    help="The provider's client ID list (its audiences), comma-separated.",
)
@token_options
def test_aws(
    trust_policy: Path,
    provider_arn: str | None,
    client_ids: str,
    token: str | None,
    claims_file: Path | None,
    moment: datetime | None,
    output: str,
) -> None:
    """Would STS AssumeRoleWithWebIdentity accept the token for this role?"""
    ids = tuple(item.strip() for item in client_ids.split(",") if item.strip())
    target = AwsTrustPolicy(load_json(trust_policy, "trust policy"), provider_arn, ids)
    _report(target, _facts(token, claims_file), moment, output)


@test.command("gcp")
@click.option(
    "--provider",
    type=READABLE,
    required=True,
    help="The provider, as `gcloud iam workload-identity-pools providers describe "
    "--format json` prints it.",
)
@click.option(
    "--member",
    help="An IAM member to check the identity against: principal://.../subject/S, "
    "principalSet://.../attribute.K/V, .../group/G or .../*.",
)
@token_options
def test_gcp(
    provider: Path,
    member: str | None,
    token: str | None,
    claims_file: Path | None,
    moment: datetime | None,
    output: str,
) -> None:
    """Would GCP STS accept the token through this provider (and grant the member)?"""
    target = GcpProvider(load_json(provider, "provider"), member)
    _report(target, _facts(token, claims_file), moment, output)


@test.command("azure")
@click.option(
    "--credential",
    type=READABLE,
    required=True,
    help="The federated identity credential, as `az ad app federated-credential show` prints it.",
)
@token_options
def test_azure(
    credential: Path,
    token: str | None,
    claims_file: Path | None,
    moment: datetime | None,
    output: str,
) -> None:
    """Would Entra accept the token as a client assertion for this credential?"""
    target = AzureCredential(load_json(credential, "credential"))
    _report(target, _facts(token, claims_file), moment, output)


def _facts(token: str | None, claims_file: Path | None) -> TokenFacts:
    if (token is None) == (claims_file is None):
        raise click.UsageError("give exactly one of --token and --claims")
    if claims_file is not None:
        return from_file(claims_file)
    raw = sys.stdin.read().strip() if token == "-" else (token or "")  # noqa: S105
    return from_token(raw)


def _report(target: Target, facts: TokenFacts, moment: datetime | None, output: str) -> None:
    try:
        evaluation = target.evaluate(facts, _utc(moment))
    except InvalidPolicy as invalid:
        if output == "json":
            emit_json(invalid.to_dict())
        raise  # NOTE: one line on stderr and exit 2, not 1: invalid is not denied
    if output == "json":
        emit_json(evaluation.to_dict())
    else:
        for line in evaluation.explain():
            click.echo(line)
    click.get_current_context().exit(0 if evaluation.allowed else 1)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


COMMANDS = (policy,)


@policy.group("suggest")
def suggest() -> None:
    """Print the narrowest policy that admits exactly one run's subject."""


class SuggestCommand(GreedyCommand):
    greedy = ("--subject-template", "--run-attributes")


def subject_options(function: F) -> F:
    for decorate in reversed(
        (
            click.option(
                "--subject-template",
                multiple=True,
                help="Components of sub, as issue-token takes them: teams environment.",
            ),
            click.option(
                "--run-attributes",
                multiple=True,
                help="The run's values, name=value: principal=user:UID teams=T "
                "environment=E agent_name=A skill_spec=S run_id=R host=H email=M.",
            ),
            click.option("--subject", help="Or the subject itself, as a token carries it."),
            click.option(
                "--subject-separator",
                envvar="FEDERATION_SUBJECT_SEPARATOR",
                default="/",
                show_default=True,
                help="The issuer's separator.",
            ),
        )
    ):
        function = decorate(function)
    return function


@suggest.command("aws", cls=SuggestCommand)
@subject_options
@click.option(
    "--provider-arn",
    required=True,
    help="The IAM OIDC provider: arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH.",
)
@click.option("--audience", default=AWS_CLIENT_ID, show_default=True, help="The token's aud.")
@click.option(
    "--session-tags/--no-session-tags",
    default=False,
    help="The tokens carry AWS session tags (issue-token's aws_session_tags): allow "
    "sts:TagSession too.",
)
def suggest_aws(
    subject_template: tuple[str, ...],
    run_attributes: tuple[str, ...],
    subject: str | None,
    subject_separator: str,
    provider_arn: str,
    audience: str,
    session_tags: bool,
) -> None:
    """A role trust policy: StringEquals on the provider's aud and sub."""
    from federation.policy import aws

    rendered = _subject(subject, subject_template, run_attributes, subject_separator)
    emit_json(
        aws.suggest(
            rendered, provider_arn=provider_arn, audience=audience, session_tags=session_tags
        )
    )


@suggest.command("gcp", cls=SuggestCommand)
@subject_options
@click.option(
    "--provider-name",
    required=True,
    help="projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.",
)
@click.option(
    "--issuer",
    envvar="FEDERATION_ISSUER",
    help="The issuer URL, for the provider's issuerUri.",
)
def suggest_gcp(
    subject_template: tuple[str, ...],
    run_attributes: tuple[str, ...],
    subject: str | None,
    subject_separator: str,
    provider_name: str,
    issuer: str | None,
) -> None:
    """A provider's attribute mapping and condition, and the IAM member to grant."""
    from federation.policy import gcp

    rendered = _subject(subject, subject_template, run_attributes, subject_separator)
    # NOTE: without the run's attributes, which claims a token carries is unknown.
    claims = _claims(rendered, _attributes(run_attributes)) if run_attributes else None
    suggested = gcp.suggest(rendered, provider_name=provider_name, claims=claims)
    if issuer:
        suggested["provider"]["oidc"]["issuerUri"] = issuer
    emit_json(suggested)


# NOTE: scoped_principal is rendered from principal and teams, so it is not an attribute
RUN_ATTRIBUTES = tuple(name for name in COMPONENTS if name != "scoped_principal")
PRINCIPAL_TYPES = ("user", "service_account")


def _subject(
    subject: str | None, template: tuple[str, ...], attributes: tuple[str, ...], separator: str
) -> str:
    """The subject given, or rendered from the template and the run's attributes exactly
    as the issuer renders it."""
    from federation.domain.subjects import SubjectContext, SubjectRenderer, parse_template

    if subject is not None:
        if template or attributes:
            raise click.UsageError("give --subject, or --subject-template with --run-attributes")
        return subject
    if not template:
        raise click.UsageError("give --subject-template (with --run-attributes) or --subject")
    components = parse_template(template)
    values = _attributes(attributes)
    for name in components:
        needed = "principal" if name == "scoped_principal" else name
        if needed not in values:
            example = "user:UID" if needed == "principal" else "VALUE"
            raise click.UsageError(
                f"the template names {name}: add --run-attributes {needed}={example}"
            )
    principal = values.get("principal", "user:-")
    kind, _, uid = principal.partition(":")
    if kind not in PRINCIPAL_TYPES or not uid:
        raise click.UsageError("principal is user:UID or service_account:UID")
    try:
        renderer = SubjectRenderer(separator)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    context = SubjectContext(
        principal_type=kind,
        principal_uid=uid,
        run_id=values.get("run_id", ""),
        email=values.get("email"),
        team=values.get("teams"),
        environment=values.get("environment"),
        agent_name=values.get("agent_name"),
        skill_spec=values.get("skill_spec"),
        host=values.get("host"),
    )
    return renderer.render(components, context)


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = "teams" if name == "team" else name
        if not equals or name not in RUN_ATTRIBUTES:
            raise click.UsageError(
                f"--run-attributes takes name=value with a name among {', '.join(RUN_ATTRIBUTES)}"
            )
        if name in values:
            raise click.UsageError(f"--run-attributes gives {name} twice")
        values[name] = value
    return values


def _claims(subject: str, values: dict[str, str]) -> dict[str, Any]:
    """The claims a token of that run carries (the issuer adds one per attribute)."""
    claims: dict[str, Any] = {"sub": subject}
    if "teams" in values:
        claims["teams"] = [values["teams"]]
    for name in ("email", "environment", "agent_name", "skill_spec", "run_id", "host"):
        if name in values:
            claims[name] = values[name]
    return claims
