"""The worked examples of `policy test` in docs/policy-testing.md, run on
``examples/policy``: each command shown answers the decision and reason the page prints
under it. Every GCP provider name the README, docs/ and examples/ show is one GCP (and
the GCP stand-in) would create, and every example policy evaluates (none is a document
the cloud would refuse to save)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from federation.policy.claims import from_file
from federation.policy.gcp_names import ProviderName, is_project_number
from federation.policy.result import Decision
from federation.policy.targets import AwsTrustPolicy, AzureCredential, GcpProvider, Target
from federation.stand_ins.entra import FederatedCredential
from federation.stand_ins.gcp_sts import Provider as GcpStandInProvider
from tests.support import federation_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policy"
PAGE = ROOT / "docs" / "policy-testing.md"
EXAMPLES_AT = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)  # the page's --at


def worked_examples() -> list[tuple[list[str], str]]:
    """(arguments, first answer line) for every `federation policy test` on the IAM
    policy testing page, with its `M=...` variable substituted."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    variables: dict[str, str] = {}
    found = []
    index = 0
    while index < len(lines):
        line = lines[index]
        name, equals, value = line.partition("=")
        if equals and name.isidentifier() and name.isupper():
            variables[name] = value
        if line.startswith("federation policy test "):
            command = line
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + lines[index].strip()
            for name, value in variables.items():
                command = command.replace(f"${name}", value)
            found.append((shlex.split(command)[1:], lines[index + 1]))
        index += 1
    return found


EXAMPLES_SHOWN = worked_examples()


def test_each_cloud_has_an_allow_and_a_deny_example() -> None:
    for cloud in ("aws", "gcp", "azure"):
        answers = [answer for args, answer in EXAMPLES_SHOWN if args[2] == cloud]
        assert [answer.split(":")[0] for answer in answers] == ["ALLOW", "DENY"], cloud


@pytest.mark.parametrize(("args", "answer"), EXAMPLES_SHOWN, ids=lambda value: str(value)[:40])
def test_the_page_shows_what_the_command_answers(args: list[str], answer: str) -> None:
    result = subprocess.run(
        federation_command(*args),
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == (0 if answer.startswith("ALLOW") else 1), result.stderr
    assert result.stdout.splitlines()[0] == answer


# ---- every GCP provider name the README, docs/ and examples/ show, every example policy

_SEGMENT = r"[^/\s\"'`<>${}\\]+"
PROVIDER_NAME = re.compile(
    rf"projects/{_SEGMENT}/locations/{_SEGMENT}/workloadIdentityPools/{_SEGMENT}"
    rf"/providers/{_SEGMENT}"
)
TEXT_FILES = ("*.md", "*.json", "*.tf", "*.sh")


def shown_provider_names() -> list[tuple[str, str]]:
    """(file, provider resource name) for each name written out in README.md or in a
    file under docs/ or examples/ (placeholders such as ``<pool>`` and ``${var.pool_id}``
    are not names)."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted(path for glob in TEXT_FILES for path in (ROOT / "examples").rglob(glob))
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for name in PROVIDER_NAME.findall(text):
            found.append((str(path.relative_to(ROOT)), name.rstrip(".,;:")))
    return found


NAMES_SHOWN = shown_provider_names()


def test_the_docs_and_examples_show_provider_names() -> None:
    files = {file for file, _ in NAMES_SHOWN}
    assert {"docs/policy-testing.md", "docs/clouds/gcp.md"} <= files
    assert "examples/policy/gcp-provider.json" in files


@pytest.mark.parametrize(("file", "name"), NAMES_SHOWN, ids=lambda value: str(value)[-40:])
def test_each_provider_name_shown_is_one_gcp_would_create(file: str, name: str) -> None:
    parsed = ProviderName.parse(name)
    assert parsed.id_problem() is None, f"{file}: {parsed.id_problem()}"
    assert is_project_number(parsed.project), file
    # ...and the GCP stand-in, which applies the same naming rules, takes it too.
    GcpStandInProvider(name=f"//iam.googleapis.com/{name}", issuer_uri="https://x.example")


def example_documents() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(EXAMPLES.glob("*.json"))
    }


def example_pairs() -> list[tuple[str, str]]:
    """(policy file, claims file) for every example policy and every example token of
    the same cloud."""
    documents = example_documents()
    policies = [
        name
        for name, document in documents.items()
        if "Statement" in document or "oidc" in document or "audiences" in document
    ]
    pairs = []
    for policy in policies:
        cloud = policy.split("-", 1)[0]
        pairs += [
            (policy, claims)
            for claims in documents
            if claims not in policies and claims.startswith(f"{cloud}-")
        ]
    return pairs


def target_for(policy: str, document: dict[str, Any]) -> Target:
    if policy.startswith("aws-"):
        return AwsTrustPolicy(document)
    if policy.startswith("gcp-"):
        return GcpProvider(document)
    return AzureCredential(document)


@pytest.mark.parametrize(("policy", "claims"), example_pairs())
def test_every_example_policy_evaluates(policy: str, claims: str) -> None:
    documents = example_documents()
    facts = from_file(EXAMPLES / claims)
    # NOTE: InvalidPolicy (a document the cloud would not save) fails the test.
    found = target_for(policy, documents[policy]).evaluate(facts, EXAMPLES_AT)
    assert found.checks
    assert found.decision in (Decision.ALLOW, Decision.DENY)


def test_every_cloud_has_example_pairs() -> None:
    clouds = {policy.split("-", 1)[0] for policy, _ in example_pairs()}
    assert clouds == {"aws", "gcp", "azure"}


def test_the_example_provider_and_credential_are_ones_the_stand_ins_take() -> None:
    documents = example_documents()
    provider = documents["gcp-provider.json"]
    oidc = provider["oidc"]
    GcpStandInProvider(
        name=f"//iam.googleapis.com/{provider['name']}",
        issuer_uri=oidc["issuerUri"],
        allowed_audiences=tuple(oidc.get("allowedAudiences", ())),
    )
    credential = documents["azure-credential.json"]
    (audience,) = credential["audiences"]
    assert (
        FederatedCredential(
            client_id="app",
            issuer=credential["issuer"],
            subject=credential["subject"],
            audience=audience,
        ).audience
        == audience
    )
