"""``federation issue-token``: the flags and environment of ``oz federate issue-token``."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from federation.cli.common import Cli, GreedyCommand, api_key_option, output_option
from federation.cli.output import emit_token
from federation.domain.durations import format_duration, parse_human_duration
from federation.errors import PolicyRefusal

if TYPE_CHECKING:
    from federation.policy.targets import Target


class IssueTokenCommand(GreedyCommand):
    greedy = ("--subject-template",)


@click.command("issue-token", cls=IssueTokenCommand)
@click.option("--run-id", envvar="OZ_RUN_ID", required=True, help="The run to issue for.")
@click.option("--audience", required=True, help="The aud claim: what the cloud expects.")
@click.option(
    "--duration",
    help="Lifetime, as the Oz CLI takes it: 15m, 1h 30m, 2h30m, 90s, 1day (capped by the "
    "issuer).  [default: the issuer's, 1h]",
)
@click.option(
    "--subject-template",
    multiple=True,
    help="Components joined into sub, separated by spaces: --subject-template teams environment.",
)
@click.option(
    "--check-aws-trust-policy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Refuse, before signing, a token this IAM role trust policy (JSON) would reject.",
)
@click.option(
    "--check-aws-provider-arn",
    help="The OIDC provider ARN for --check-aws-trust-policy. Default: any account's.",
)
@click.option(
    "--check-gcp-provider",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Refuse, before signing, a token this workload identity provider (JSON) would reject.",
)
@click.option("--check-gcp-member", help="An IAM member that --check-gcp-provider must grant.")
@click.option(
    "--check-azure-credential",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Refuse, before signing, a token this federated identity credential would reject.",
)
@api_key_option
@output_option("text", "json", "ndjson", "pretty")
@click.pass_obj
def issue_token(
    cli: Cli,
    run_id: str,
    audience: str,
    duration: str | None,
    subject_template: tuple[str, ...],
    check_aws_trust_policy: Path | None,
    check_aws_provider_arn: str | None,
    check_gcp_provider: Path | None,
    check_gcp_member: str | None,
    check_azure_credential: Path | None,
    api_key: str | None,
    output: str,
) -> None:
    """Issue an OIDC identity token for the current run.

    The workload token comes from WARP_WORKLOAD_TOKEN, which the run's environment sets.
    With --check-*, the issuer first previews the claims (nothing is signed) and the
    token is issued only if the given policy would accept it.
    """
    if subject_template and not any(subject_template):
        # NOTE: `--subject-template ""` (an unset variable) is as empty as no value.
        raise click.UsageError("--subject-template requires at least one value")
    targets = _targets(
        check_aws_trust_policy,
        check_aws_provider_arn,
        check_gcp_provider,
        check_gcp_member,
        check_azure_credential,
    )
    # Whole seconds, as the Oz CLI sends them: the issuer's own grammar is narrower.
    requested = parse_human_duration(duration) if duration is not None else None
    body: dict[str, object] = {"run_id": run_id, "audience": audience}
    if requested is not None:
        body["requested_duration_seconds"] = requested
    if subject_template:
        body["subject_template"] = list(subject_template)
    headers = {}
    workload_token = os.environ.get("WARP_WORKLOAD_TOKEN")
    if workload_token:
        headers["X-Warp-Ambient-Workload-Token"] = workload_token
    with cli.client(api_key) as client:
        if targets:
            preview = client.request(
                "POST", "/api/v1/federate/preview-token", json=body, headers=headers
            )
            _check(targets, preview)
        answer = client.request("POST", "/api/v1/federate/issue-token", json=body, headers=headers)
    granted = int((_time(answer["expires_at"]) - _time(answer["issued_at"])).total_seconds())
    if requested is not None and granted < requested:
        click.echo(
            f"federation: requested {format_duration(requested)}, granted "
            f"{format_duration(granted)} (the issuer's maximum)",
            err=True,
        )
    emit_token(answer["token"], _time(answer["expires_at"]), answer["issuer"], output)


def _targets(
    aws_trust_policy: Path | None,
    aws_provider_arn: str | None,
    gcp_provider: Path | None,
    gcp_member: str | None,
    azure_credential: Path | None,
) -> list[tuple[str, Target]]:
    """The policies to check against, loaded before anything is asked of the issuer."""
    from federation.policy.claims import load_json
    from federation.policy.targets import AwsTrustPolicy, AzureCredential, GcpProvider

    if aws_provider_arn is not None and aws_trust_policy is None:
        raise click.UsageError("--check-aws-provider-arn goes with --check-aws-trust-policy")
    if gcp_member is not None and gcp_provider is None:
        raise click.UsageError("--check-gcp-member goes with --check-gcp-provider")
    targets: list[tuple[str, Target]] = []
    if aws_trust_policy is not None:
        document = load_json(aws_trust_policy, "trust policy")
        targets.append(("the AWS trust policy", AwsTrustPolicy(document, aws_provider_arn)))
    if gcp_provider is not None:
        document = load_json(gcp_provider, "provider")
        targets.append(("the GCP provider", GcpProvider(document, gcp_member)))
    if azure_credential is not None:
        document = load_json(azure_credential, "credential")
        targets.append(("the Azure credential", AzureCredential(document)))
    return targets


def _check(targets: list[tuple[str, Target]], preview: dict[str, Any]) -> None:
    """Refuse, with the explanation, if any target would reject the previewed claims."""
    from federation.policy.claims import TokenFacts

    facts = TokenFacts(claims=preview["claims"], header=preview["header"])
    for name, target in targets:
        evaluation = target.evaluate(facts)
        if not evaluation.allowed:
            for line in evaluation.explain():
                click.echo(line, err=True)
            raise PolicyRefusal(f"{name}: {evaluation.reason}")
        for warning in evaluation.warnings:
            click.echo(f"federation: warning ({name}): {warning}", err=True)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


COMMANDS = (issue_token,)
