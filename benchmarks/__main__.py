"""``python -m benchmarks [--smoke] [--out DIR] [--duration S]``: run, write, summarize.

Exits non-zero only when the harness or a server failed; a missed target is reported
in the summary and the results, never as a failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import plan, report, suite

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmark the issuer against baselines."
    )
    parser.add_argument("--smoke", action="store_true", help="a quick end-to-end check")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    parser.add_argument("--duration", type=float, default=None, help="seconds per timed run")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    chosen = plan.smoke(args.duration) if args.smoke else plan.full(args.duration)
    results = suite.run(chosen)
    written = report.write(results, args.out)
    print(report.summary(results))
    print("wrote " + ", ".join(str(path) for path in written))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
