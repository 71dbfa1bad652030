"""The table-driven corpus: ``cases/*.json``, each case a policy, claims, the decision
the cloud's documentation says it makes, and words the reason must hold.

A case's expectation comes from the documentation cited in its ``source``, not from
running the evaluator. ``expected`` is ``allow``, ``deny``, or ``invalid`` for a policy
the cloud would refuse to save (then ``reason`` is words of the one-line error, which
names the cloud's own error). Its ``warnings``, when given, are words each of which some
warning must hold (an empty list: no warning at all), and ``no_warning`` words that none
may hold. A ``header`` (GCP, Azure) is the token's JOSE header. Newer case files cite
their documentation by its public URL.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from federation.errors import InvalidPolicy
from federation.policy import aws, azure, gcp
from federation.policy.result import Evaluation

CASES = Path(__file__).parent / "cases"
CLOUDS = ("aws", "gcp", "azure")


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(CASES.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            found.append((f"{path.stem}: {case['name']}", case))
    return found


ALL = load_cases()
# Case files whose every case cites its documentation by public URL (newer files).
URL_CITING_FILES = ("aws_time", "aws_edges", "gcp_edges", "azure_edges", "warnings")
CITED_BY_URL = {name for name, _ in ALL if name.split(":")[0] in URL_CITING_FILES}


def evaluate(case: dict[str, Any]) -> Evaluation:
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    claims = case["claims"]
    if "aws" in case:
        spec = case["aws"]
        return aws.evaluate(
            spec["trust_policy"],
            claims,
            provider_arn=spec.get("provider_arn"),
            client_ids=tuple(spec.get("client_ids", ("sts.amazonaws.com",))),
            now=now,
        )
    if "gcp" in case:
        spec = case["gcp"]
        return gcp.evaluate(
            spec["provider"], claims, member=spec.get("member"), header=spec.get("header"), now=now
        )
    spec = case["azure"]
    return azure.evaluate(spec["credential"], claims, header=spec.get("header"), now=now)


@pytest.mark.parametrize("case", [case for _, case in ALL], ids=[name for name, _ in ALL])
def test_case(case: dict[str, Any]) -> None:
    if case["expected"] == "invalid":
        with pytest.raises(InvalidPolicy) as raised:
            evaluate(case)
        assert case["reason"].lower() in raised.value.message.lower(), raised.value.message
        return
    evaluation = evaluate(case)
    assert evaluation.decision.value == case["expected"], evaluation.explain()
    assert case["reason"].lower() in evaluation.reason.lower(), evaluation.reason
    if "warnings" in case:
        if not case["warnings"]:
            assert evaluation.warnings == (), evaluation.warnings
        for words in case["warnings"]:
            assert any(words.lower() in w.lower() for w in evaluation.warnings), (
                words,
                evaluation.warnings,
            )
    for words in case.get("no_warning", ()):
        assert not any(words.lower() in w.lower() for w in evaluation.warnings), (
            words,
            evaluation.warnings,
        )
    assert evaluation.checks, "every evaluation says what it compared"


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(ALL) >= 80
    per_cloud = {cloud: sum(cloud in case for _, case in ALL) for cloud in CLOUDS}
    assert per_cloud["aws"] >= 55
    assert per_cloud["gcp"] >= 30
    assert per_cloud["azure"] >= 10
    names = [name for name, _ in ALL]
    assert len(set(names)) == len(names), "case names must be unique"
    for name, case in ALL:
        assert sum(cloud in case for cloud in CLOUDS) == 1, name
        assert case["expected"] in ("allow", "deny", "invalid"), name
        assert case["source"].strip(), f"{name} cites no source"
        if name in CITED_BY_URL:
            assert "https://" in case["source"], f"{name} cites no documentation URL"
        assert case["reason"].strip(), name


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_cloud_has_allows_denies_and_invalid_policies(cloud: str) -> None:
    decisions = {case["expected"] for _, case in ALL if cloud in case}
    assert decisions == {"allow", "deny", "invalid"}
