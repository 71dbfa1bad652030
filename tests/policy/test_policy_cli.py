"""`federation policy test` through the real entry point, offline: the exit code is the
decision (0 allow, 1 deny), `--output json` is for CI, bad input or a policy the cloud
would not save is one line and 2."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import assert_error_line
from tests.support import federation_command

ISSUER = "https://issuer.example.com"
ENTRA = "api://AzureADTokenExchange"
NOW = "2026-11-28T10:00:00Z"
CLAIMS = {
    "iss": ISSUER,
    "sub": "teams:t1/environment:prod",
    "aud": [ENTRA],
    "iat": 1795860000,
    "nbf": 1795860000,
    "exp": 1795863600,
}
CREDENTIAL = {
    "name": "oz-prod",
    "issuer": ISSUER,
    "subject": "teams:t1/environment:prod",
    "audiences": [ENTRA],
}


def policy(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        federation_command("policy", *args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        check=False,
    )


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def unsigned_token(claims: dict[str, Any], alg: str = "RS256") -> str:
    """A JWT the tester can read; it never verifies signatures (a cloud does)."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}.c2ln"


def test_allow_exits_0_and_explains_every_check(tmp_path: Path) -> None:
    credential = write(tmp_path / "credential.json", CREDENTIAL)
    claims = write(tmp_path / "claims.json", CLAIMS)
    result = policy(
        "test", "azure", "--credential", credential, "--claims", claims, "--at", NOW, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ALLOW: ")
    assert "  pass  subject" in lines
    assert "FAIL" not in result.stdout


def test_deny_exits_1_with_the_reason_in_json(tmp_path: Path) -> None:
    credential = write(
        tmp_path / "credential.json", {**CREDENTIAL, "subject": "teams:t1/environment:Prod"}
    )
    token = unsigned_token(CLAIMS)
    result = policy(
        "test",
        "azure",
        "--credential",
        credential,
        "--token",
        token,
        "--at",
        NOW,
        "--output",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    assert answer["decision"] == "deny"
    assert answer["reason"].startswith("AADSTS700213")
    assert "letter case" in answer["reason"]
    failed = [check for check in answer["checks"] if not check["passed"]]
    assert [check["what"] for check in failed] == ["subject"]
    assert failed[0]["compared"] == {
        "credential": "teams:t1/environment:Prod",
        "token": "teams:t1/environment:prod",
    }


def test_the_token_header_is_read_from_a_token_and_from_decode_output(tmp_path: Path) -> None:
    credential = write(tmp_path / "credential.json", CREDENTIAL)
    es256 = unsigned_token(CLAIMS, alg="ES256")
    from_token = policy(
        "test",
        "azure",
        "--credential",
        credential,
        "--token",
        "-",
        "--at",
        NOW,
        cwd=tmp_path,
        stdin=es256,
    )
    assert from_token.returncode == 1
    assert "RS256" in from_token.stdout.splitlines()[0]
    decoded = write(tmp_path / "decoded.json", {"header": {"alg": "ES256"}, "claims": CLAIMS})
    from_decode = policy(
        "test", "azure", "--credential", credential, "--claims", decoded, "--at", NOW, cwd=tmp_path
    )
    assert from_decode.returncode == 1
    assert "RS256" in from_decode.stdout.splitlines()[0]


def test_an_expired_token_is_denied_at_the_given_time(tmp_path: Path) -> None:
    credential = write(tmp_path / "credential.json", CREDENTIAL)
    claims = write(tmp_path / "claims.json", CLAIMS)
    later = policy(
        "test",
        "azure",
        "--credential",
        credential,
        "--claims",
        claims,
        "--at",
        "2026-11-28T12:00:00",
        cwd=tmp_path,
    )
    assert later.returncode == 1
    assert "AADSTS700024" in later.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--credential", "missing.json", "--claims", "claims.json"],
            "cannot read the credential file",
        ),
        (["--credential", "broken.json", "--claims", "claims.json"], "is not valid JSON"),
        (["--credential", "list.json", "--claims", "claims.json"], "must hold a JSON object"),
        (["--credential", "credential.json"], "exactly one of --token and --claims"),
        (
            ["--credential", "credential.json", "--claims", "claims.json", "--token", "a.b.c"],
            "exactly one of",
        ),
        (["--credential", "credential.json", "--token", "not-a-jwt"], "not a JWT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    write(tmp_path / "credential.json", CREDENTIAL)
    write(tmp_path / "claims.json", CLAIMS)
    write(tmp_path / "list.json", [CREDENTIAL])
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    result = policy("test", "azure", *args, cwd=tmp_path)
    assert words in assert_error_line(result, 2)


def test_a_secret_looking_token_is_never_echoed(tmp_path: Path) -> None:
    write(tmp_path / "credential.json", CREDENTIAL)
    secret = "wk-" + "s" * 40
    result = policy(
        "test", "azure", "--credential", "credential.json", "--token", secret, cwd=tmp_path
    )
    assert_error_line(result, 2, secret)


AWS_PROVIDER = "arn:aws:iam::111122223333:oidc-provider/issuer.example.com"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": AWS_PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"issuer.example.com:aud": "sts.amazonaws.com"},
                "StringLike": {"issuer.example.com:sub": "teams:t1/*"},
            },
        }
    ],
}


@pytest.mark.parametrize(
    ("subject", "exit_code"), [("teams:t1/environment:prod", 0), ("teams:t10/environment:prod", 1)]
)
def test_aws_decides_by_the_exit_code(tmp_path: Path, subject: str, exit_code: int) -> None:
    policy_file = write(tmp_path / "trust.json", TRUST_POLICY)
    claims = write(
        tmp_path / "claims.json", {**CLAIMS, "sub": subject, "aud": ["sts.amazonaws.com"]}
    )
    result = policy(
        "test", "aws", "--trust-policy", policy_file, "--provider-arn", AWS_PROVIDER,
        "--claims", claims, "--at", NOW, "--output", "json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == exit_code, result.stderr
    assert json.loads(result.stdout)["decision"] == ("allow" if exit_code == 0 else "deny")


def test_aws_client_ids_are_the_providers_audiences(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "trust.json", TRUST_POLICY)
    claims = write(
        tmp_path / "claims.json", {**CLAIMS, "sub": "teams:t1/x:y", "aud": ["sts.amazonaws.com"]}
    )
    args = ["test", "aws", "--trust-policy", policy_file, "--claims", claims, "--at", NOW]
    assert policy(*args, "--client-ids", "other,sts.amazonaws.com", cwd=tmp_path).returncode == 0
    refused = policy(*args, "--client-ids", "other", cwd=tmp_path)
    assert refused.returncode == 1
    assert "client ID" in refused.stdout.splitlines()[0]


GCP_NAME = "projects/123456789012/locations/global/workloadIdentityPools/agents/providers/oz-agents"


@pytest.mark.parametrize(("team", "exit_code"), [("t1", 0), ("t2", 1)])
def test_gcp_checks_the_member_against_the_mapped_groups(
    tmp_path: Path, team: str, exit_code: int
) -> None:
    provider = write(
        tmp_path / "provider.json",
        {
            "name": GCP_NAME,
            "state": "ACTIVE",
            "oidc": {"issuerUri": ISSUER},
            "attributeMapping": {
                "google.subject": "assertion.sub",
                "google.groups": "assertion.teams",
            },
        },
    )
    claims = write(
        tmp_path / "claims.json",
        {**CLAIMS, "aud": [f"//iam.googleapis.com/{GCP_NAME}"], "teams": [team]},
    )
    member = "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/agents/group/t1"
    result = policy(
        "test",
        "gcp",
        "--provider",
        provider,
        "--member",
        member,
        "--claims",
        claims,
        "--at",
        NOW,
        cwd=tmp_path,
    )
    assert result.returncode == exit_code, result.stdout
    assert result.stdout.startswith("ALLOW: " if exit_code == 0 else "DENY: ")


def test_suggest_needs_every_attribute_its_template_names(tmp_path: Path) -> None:
    result = policy(
        "suggest", "aws", "--provider-arn", AWS_PROVIDER, "--subject-template", "teams",
        "environment", "--run-attributes", "teams=t1", cwd=tmp_path,
    )  # fmt: skip
    assert "add --run-attributes environment=VALUE" in assert_error_line(result, 2)


def test_suggest_renders_values_as_the_issuer_does(tmp_path: Path) -> None:
    result = policy(
        "suggest", "aws", "--provider-arn", AWS_PROVIDER, "--subject-template", "agent_name",
        "--run-attributes", "agent_name=x/environment:prod", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    conditions = json.loads(result.stdout)["Statement"][0]["Condition"]["StringEquals"]
    # A value can never fake a component: its `:` is percent-encoded, as in tokens.
    assert conditions["issuer.example.com:sub"] == "agent_name:x/environment%3Aprod"


@pytest.mark.parametrize(
    ("cloud", "flag", "document", "words"),
    [
        (
            "aws",
            "--trust-policy",
            {"Version": "2012-10-17", "Statement": []},
            "(MalformedPolicyDocument: the trust policy has no Statement)",
        ),
        (
            "azure",
            "--credential",
            {**CREDENTIAL, "audiences": [ENTRA, "other"]},
            "(Federated identity credentials must have exactly one audience: ",
        ),
        (
            "gcp",
            "--provider",
            {
                "name": "projects/1/locations/global/workloadIdentityPools/agents/providers/oz",
                "oidc": {"issuerUri": ISSUER},
                "attributeMapping": {"google.subject": "assertion.sub"},
            },
            "(INVALID_ARGUMENT: the provider's name: the provider ID 'oz' must be",
        ),
    ],
)
def test_a_policy_the_cloud_would_not_save_exits_2_not_1(
    tmp_path: Path, cloud: str, flag: str, document: dict[str, Any], words: str
) -> None:
    path = write(tmp_path / "policy.json", document)
    claims = write(tmp_path / "claims.json", CLAIMS)
    result = policy("test", cloud, flag, path, "--claims", claims, cwd=tmp_path)
    message = assert_error_line(result, 2)
    assert message.startswith("The cloud would refuse to save this policy. ")
    assert words in message

    as_json = policy(
        "test", cloud, flag, path, "--claims", claims, "--output", "json", cwd=tmp_path
    )
    assert as_json.returncode == 2
    answer = json.loads(as_json.stdout)
    assert answer["decision"] == "invalid"
    assert answer["error"].rstrip(".") in message  # the cloud's own words
    assert answer["reason"] in message


def test_gcp_reads_the_token_header(tmp_path: Path) -> None:
    name = "projects/123456789012/locations/global/workloadIdentityPools/agents/providers/oz-agents"
    provider = write(
        tmp_path / "provider.json",
        {
            "name": name,
            "oidc": {"issuerUri": ISSUER},
            "attributeMapping": {"google.subject": "assertion.sub"},
        },
    )
    claims = {**CLAIMS, "aud": [f"//iam.googleapis.com/{name}"]}
    args = ("test", "gcp", "--provider", provider, "--at", NOW, "--token")
    assert policy(*args, unsigned_token(claims, "ES256"), cwd=tmp_path).returncode == 0
    refused = policy(*args, unsigned_token(claims, "RS384"), cwd=tmp_path)
    assert refused.returncode == 1
    assert "GCP STS takes only RS256 or ES256" in refused.stdout.splitlines()[0]
