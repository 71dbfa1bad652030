"""Minting in process, against the floor: raw ES256 signing with the same key.

Signing dominates a token's cost, so the interesting number is how much of the signing
rate the whole minting path keeps: claims, subject rendering and JWS encoding around the
signature. Both run in one process pinned to one core, in alternation, for a few rounds;
each rate is the median over the rounds, and the ratio is mint / raw (1.0 would be a
minting path that costs nothing but the signature).

Minting is :meth:`federation.issuing.minting.Minter.mint`, the issue path without the store:
for a run whose checks have passed, the claims with the rendered subject, then the JWS.
Raw signing is ``cryptography``'s ECDSA P-256/SHA-256 over the signing input of such a
token, with the key the issuer signs with, read from its key file.

The measurement runs in a child process (``python -m benchmarks.mint``), so that pinning
it never pins the servers and load generator started later by the same harness.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.pinned import pinned_cpu, run_child
from federation.clock import SystemClock
from federation.domain.durations import Grant
from federation.domain.subjects import SubjectContext, parse_template
from federation.issuing.minting import Minter
from federation.server.runtime import open_keyring
from federation.settings import load_settings

ISSUER = "https://issuer.example.com"
AUDIENCE = "sts.amazonaws.com"
TEMPLATE = ("teams", "environment")


@dataclass(frozen=True)
class Round:
    raw_per_s: float
    mint_per_s: float


@dataclass(frozen=True)
class MintResult:
    """Rates in operations per second, per round and as medians."""

    cpu: int
    iterations: int
    rounds: list[Round]
    raw_per_s: float
    mint_per_s: float
    raw_us: float
    mint_us: float
    ratio: float
    path: str  # what was measured as minting
    token_bytes: int


# A user's run in one team, as the README's walk-through sets it up.
CONTEXT = SubjectContext(
    principal_type="user",
    principal_uid="bench",
    run_id="run-0123456789abcdef",
    email="bench@example.com",
    team="platform",
    environment="staging",
    agent_name="nightly-deploy",
    skill_spec="acme/infra:deploy",
    host="warp",
)


def minter(keys_dir: Path) -> tuple[Minter, Grant]:
    """The minter as a server builds it from its settings (the defaults), on a fresh
    file keyring in ``keys_dir``, and the default grant."""
    settings = load_settings(issuer=ISSUER, keys_dir=keys_dir)
    clock = SystemClock()
    keyring = open_keyring(settings, clock)
    keyring.ensure(["ES256"])
    built = Minter.from_settings(settings, keyring, clock)
    return built, settings.duration_policy().grant(None)


def _rate(operation: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        operation()
    elapsed = time.perf_counter() - start
    return iterations / elapsed if elapsed > 0 else 0.0


def measure(cpu: int, iterations: int, rounds: int) -> MintResult:
    """Pin this process to ``cpu`` and measure raw signing and minting."""
    os.sched_setaffinity(0, {cpu})
    with tempfile.TemporaryDirectory(prefix="federation-bench-mint-") as tmp:
        keys_dir = Path(tmp) / "keys"
        minting, grant = minter(keys_dir)
        template = parse_template(TEMPLATE)

        def minted() -> str:
            return minting.mint(CONTEXT, template, AUDIENCE, grant).token

        token = minted()
        signer, _ = minting.keyring.signer("ES256")
        private = serialization.load_pem_private_key(
            (keys_dir / f"{signer.kid}.pem").read_bytes(), password=None
        )
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise TypeError("the ES256 key file holds no EC key")
        signing_input = token.rsplit(".", 1)[0].encode("ascii")
        algorithm = ec.ECDSA(hashes.SHA256())

        def raw() -> bytes:
            return private.sign(signing_input, algorithm)

        _rate(raw, max(1, iterations // 10))  # warm caches
        _rate(minted, max(1, iterations // 10))
        measured = [
            Round(
                raw_per_s=round(_rate(raw, iterations), 1),
                mint_per_s=round(_rate(minted, iterations), 1),
            )
            for _ in range(rounds)
        ]
    raw_rate = statistics.median(r.raw_per_s for r in measured)
    mint_rate = statistics.median(r.mint_per_s for r in measured)
    return MintResult(
        cpu=cpu,
        iterations=iterations,
        rounds=measured,
        raw_per_s=round(raw_rate, 1),
        mint_per_s=round(mint_rate, 1),
        raw_us=round(1e6 / raw_rate, 2),
        mint_us=round(1e6 / mint_rate, 2),
        ratio=round(mint_rate / raw_rate, 3),
        path="Minter.mint",
        token_bytes=len(token),
    )


def run_pinned(iterations: int, rounds: int, timeout: float = 240.0) -> MintResult:
    """:func:`measure` in a child process pinned to one core."""
    arguments = ["--iterations", str(iterations), "--rounds", str(rounds)]
    return from_dict(run_child("benchmarks.mint", arguments, timeout))


def from_dict(data: dict[str, Any]) -> MintResult:
    """The result as the child process printed it (``asdict``)."""
    rounds = [Round(raw_per_s=r["raw_per_s"], mint_per_s=r["mint_per_s"]) for r in data["rounds"]]
    return MintResult(**{**data, "rounds": rounds})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mint", description=__doc__)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cpu = pinned_cpu() if args.cpu is None else args.cpu
    result = measure(cpu, args.iterations, args.rounds)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
