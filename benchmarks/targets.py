"""The performance targets, each judged met or missed against one run's results.

A missed target is information, never a failure of the run: the numbers come from
whatever machine ran them, busy or not. Each target takes its worst case over the
configurations it covers, so "met" means met everywhere.
"""

from __future__ import annotations

from benchmarks.results import (
    DISCOVERY,
    ENDPOINTS,
    ISSUE_TOKEN,
    JWKS,
    Results,
    Target,
)

MINT_RATIO = 0.80
ISSUE_RATIO = 0.50
ISSUE_CONNECTIONS = 16
ISSUE_P99_MS = 10.0
DOCUMENT_RATIO = 0.90
SCALING_RATIO = 1.6


def evaluate(results: Results) -> list[Target]:
    targets = [_mint(results), _issue_token(results)]
    targets += [_document(results, endpoint) for endpoint in (JWKS, DISCOVERY)]
    targets += [_scaling(results, endpoint) for endpoint in ENDPOINTS]
    targets.append(_balance(results))
    return targets


def _mint(results: Results) -> Target:
    ratio = results.mint.ratio if results.mint else None
    return Target(
        name="mint / raw ES256 signing",
        value=ratio,
        threshold=f">= {MINT_RATIO:.2f}",
        met=ratio is not None and ratio >= MINT_RATIO,
    )


def _issue_token(results: Results) -> Target:
    ratios: list[float] = []
    p99s: list[float] = []
    for configuration in results.configurations:
        run = configuration.run(ISSUE_TOKEN, ISSUE_CONNECTIONS)
        if run is not None and run.ratio_to_hello is not None:
            ratios.append(run.ratio_to_hello)
            p99s.append(run.load.p99_ms)
    worst = min(ratios) if ratios else None
    slowest = max(p99s) if p99s else None
    met = (
        worst is not None
        and slowest is not None
        and worst >= ISSUE_RATIO
        and slowest <= ISSUE_P99_MS
    )
    return Target(
        name=f"issue-token / hello at {ISSUE_CONNECTIONS} connections, p99",
        value=worst,
        threshold=f">= {ISSUE_RATIO:.2f} and p99 <= {ISSUE_P99_MS:g} ms",
        met=met,
        detail=f"worst p99 {slowest:.2f} ms" if slowest is not None else "not measured",
    )


def _document(results: Results, endpoint: str) -> Target:
    ratios = [
        run.ratio_to_hello
        for configuration in results.configurations
        for run in configuration.runs
        if run.endpoint == endpoint and run.ratio_to_hello is not None
    ]
    worst = min(ratios) if ratios else None
    return Target(
        name=f"{endpoint} / hello",
        value=worst,
        threshold=f">= {DOCUMENT_RATIO:.2f}",
        met=worst is not None and worst >= DOCUMENT_RATIO,
    )


def _scaling(results: Results, endpoint: str) -> Target:
    ratios = [s.ratio for s in results.scaling if s.endpoint == endpoint]
    worst = min(ratios) if ratios else None
    return Target(
        name=f"{endpoint}: 2 workers / 1 worker",
        value=worst,
        threshold=f">= {SCALING_RATIO:.1f}",
        met=worst is not None and worst >= SCALING_RATIO,
    )


def _balance(results: Results) -> Target:
    balances = [
        run.balance
        for configuration in results.configurations
        if configuration.workers > 1
        for run in configuration.runs
        if run.balance is not None
    ]
    unbalanced = sum(1 for b in balances if not b.balanced)
    worst = min((min(b.shares) for b in balances if b.shares), default=None)
    return Target(
        name="balanced 2-worker runs",
        value=worst,
        threshold="every worker >= 0.35 of the CPU time, every run",
        met=bool(balances) and unbalanced == 0,
        detail=f"{len(balances) - unbalanced} of {len(balances)} runs balanced",
    )
