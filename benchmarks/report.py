"""Writing the results: ``latest.json`` (every number), ``latest.md`` (the tables and
ratios), ``latest.png`` (throughput and p99 per endpoint and configuration), and the
ratio summary printed at the end of a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks import stages
from benchmarks.results import ENDPOINTS, HELLO, Configuration, Results

JSON_NAME = "latest.json"
MARKDOWN_NAME = "latest.md"
CHART_NAME = "latest.png"
RATIO_HEADING = "## Ratios to hello"
STAGES_HEADING = "## Where issue-token's time goes (in process, one core)"


def write(results: Results, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / JSON_NAME, out / MARKDOWN_NAME, out / CHART_NAME]
    paths[0].write_text(json.dumps(asdict(results), indent=2) + "\n")
    paths[1].write_text(markdown(results))
    chart(results, paths[2])
    return paths


def _measured(results: Results) -> list[Configuration]:
    return [c for c in results.configurations if not c.skipped and c.runs]


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def ratio_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """Endpoint / hello throughput, one row per configuration and connection count."""
    header = ["configuration", "connections", *[e for e in ENDPOINTS if e != HELLO]]
    rows: list[list[str]] = []
    for configuration in _measured(results):
        for connections in results.plan.connections:
            cells = []
            for endpoint in header[2:]:
                run = configuration.run(endpoint, connections)
                cells.append(_ratio(run.ratio_to_hello if run else None))
            rows.append([configuration.label, str(connections), *cells])
    return header, rows


def scaling_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    header = ["database", "connections", *ENDPOINTS]
    rows: list[list[str]] = []
    databases = dict.fromkeys(s.database for s in results.scaling)
    for database in databases:
        for connections in results.plan.connections:
            found = {
                s.endpoint: s.ratio
                for s in results.scaling
                if s.database == database and s.connections == connections
            }
            if found:
                rows.append(
                    [database, str(connections), *[_ratio(found.get(e)) for e in ENDPOINTS]]
                )
    return header, rows


def target_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    header = ["target", "worst value", "threshold", "", "note"]
    rows = [
        [t.name, _ratio(t.value), t.threshold, "met" if t.met else "missed", t.detail]
        for t in results.targets
    ]
    return header, rows


def stage_section(results: Results) -> list[str]:
    """Per database, each stage of one issue-token request in µs and as a share of the
    whole request through the ASGI application (``benchmarks.stages``)."""
    lines = [
        STAGES_HEADING,
        "",
        "One request's stages, each timed alone on the same data in one process pinned to "
        "one core (µs per operation, median of rounds); the whole request through the ASGI "
        "application called directly, no socket. Shares are of that request; derived rows "
        "are differences of measured ones. Bound: hello / request in process, the best "
        "ratio to hello this path could reach before the HTTP server's own cost.",
    ]
    if not results.stages:
        lines += ["", "not measured"]
    for breakdown in results.stages:
        lines += ["", f"### {breakdown.database}", ""]
        if breakdown.skipped or breakdown.error:
            lines.append(f"not measured: {breakdown.skipped or breakdown.error}")
            continue
        lines += _table(["stage", "µs", "share"], stages.table(breakdown))
        lines += [
            "",
            f"bound (hello / request, in process): **{_ratio(breakdown.bound)}**; "
            f"{breakdown.iterations} iterations x {breakdown.rounds} rounds on CPU "
            f"{breakdown.cpu}, {breakdown.loop} event loop.",
        ]
        lines += ["", *[f"- {note}" for note in breakdown.notes]] if breakdown.notes else []
    return lines


def markdown(results: Results) -> str:
    m, plan = results.machine, results.plan
    lines = [
        "# Benchmark results",
        "",
        f"{m.date}: {m.cpu_model}, {m.cores} cores, Python {m.python}; "
        f"load average {m.load_average[0]:.2f} before, "
        f"{results.load_average_after[0]:.2f} after; "
        f"{'smoke run, ' if plan.smoke else ''}{plan.duration:g} s per run after "
        f"{plan.warmup:g} s of warm-up; took {results.elapsed_s:.0f} s.",
        "",
        "## Minting vs raw ES256 signing (one core, median of rounds)",
        "",
    ]
    if results.mint:
        mint = results.mint
        lines += _table(
            ["operation", "per second", "µs each"],
            [
                ["raw ES256 signature (cryptography)", f"{mint.raw_per_s:,.0f}", f"{mint.raw_us}"],
                [f"mint ({mint.path})", f"{mint.mint_per_s:,.0f}", f"{mint.mint_us}"],
            ],
        )
        lines += ["", f"mint / raw: **{mint.ratio:.2f}**"]
    else:
        lines.append("not measured (the mint benchmark failed)")
    lines += ["", *stage_section(results)]
    lines += ["", RATIO_HEADING, "", "Requests per second of each endpoint over hello's, "]
    lines[-1] += "same server configuration and connections."
    lines += ["", *_table(*ratio_rows(results)), ""]
    lines += ["## 2 workers / 1 worker", "", *_table(*scaling_rows(results)), ""]
    lines += ["## Targets", "", *_table(*target_rows(results)), ""]
    lines += [
        "## Checks",
        "",
        f"- audit rows match the tokens issued: {'yes' if results.checks.audit else 'NO'}",
        f"- a deleted key is refused at once (401): "
        f"{'yes' if results.checks.deleted_key else 'NO'}",
        "",
        "## Every run",
        "",
    ]
    rows: list[list[str]] = []
    for configuration in results.configurations:
        if configuration.skipped or configuration.error:
            why = configuration.skipped or configuration.error or ""
            rows.append([configuration.label, "", f"not measured: {why}", *[""] * 6])
        for run in configuration.runs:
            shares = (
                "/".join(f"{s:.2f}" for s in run.balance.shares)
                if run.balance and run.balance.workers > 1
                else ""
            )
            rows.append(
                [
                    configuration.label,
                    str(run.connections),
                    run.endpoint,
                    f"{run.load.requests_per_s:,.0f}",
                    f"{run.load.p50_ms:.2f}",
                    f"{run.load.p99_ms:.2f}",
                    str(run.load.error_total),
                    _ratio(run.ratio_to_hello),
                    shares,
                ]
            )
    header = ["configuration", "conns", "endpoint", "req/s", "p50 ms", "p99 ms", "errors"]
    lines += _table([*header, "x hello", "CPU shares"], rows)
    return "\n".join(lines) + "\n"


def chart(results: Results, path: Path) -> None:
    """Throughput (top) and p99 latency (bottom, log scale) per endpoint, one bar per configuration,
    one column per connection count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configurations = _measured(results)
    columns = list(results.plan.connections)
    figure, axes = plt.subplots(
        2, len(columns), figsize=(6.5 * len(columns), 8), squeeze=False, constrained_layout=True
    )
    width = 0.8 / max(1, len(configurations))
    for column, connections in enumerate(columns):
        for row, (metric, unit) in enumerate((("requests_per_s", "req/s"), ("p99_ms", "ms"))):
            ax = axes[row][column]
            for index, configuration in enumerate(configurations):
                values = []
                for endpoint in ENDPOINTS:
                    run = configuration.run(endpoint, connections)
                    values.append(float(getattr(run.load, metric)) if run else 0.0)
                positions = [i + (index - (len(configurations) - 1) / 2) * width for i in range(4)]
                ax.bar(positions, values, width, label=configuration.label)
            ax.set_xticks(range(len(ENDPOINTS)), ENDPOINTS)
            title = "throughput" if row == 0 else "p99 latency"
            ax.set_title(f"{title}, {connections} connections")
            ax.set_ylabel(unit)
            if row == 1:
                ax.set_yscale("log")  # issue-token's tail would flatten every other bar
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.suptitle(f"federation benchmarks — {results.machine.date}")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(results: Results) -> str:
    """The ratios and targets, for the terminal."""
    lines = ["", "== ratio summary =="]
    if results.mint:
        mint = results.mint
        lines.append(
            f"mint {mint.mint_per_s:,.0f}/s vs raw ES256 {mint.raw_per_s:,.0f}/s "
            f"(one core): mint/raw {mint.ratio:.2f}"
        )
    if results.stages:
        lines.append("in process, one core (benchmarks.stages):")
        lines += [f"  {b.database}: {stages.summary_line(b)}" for b in results.stages]
    header, rows = ratio_rows(results)
    lines.append("x hello (req/s): " + "  ".join(header[2:]))
    lines += [f"  {row[0]}, c{row[1]}: " + "  ".join(row[2:]) for row in rows]
    header, rows = scaling_rows(results)
    lines.append("2 workers / 1 worker: " + "  ".join(header[2:]))
    lines += [f"  {row[0]}, c{row[1]}: " + "  ".join(row[2:]) for row in rows]
    lines.append(
        f"checks: audit {'ok' if results.checks.audit else 'FAILED'}, "
        f"deleted key 401 {'ok' if results.checks.deleted_key else 'FAILED'}"
    )
    for configuration in results.configurations:
        if configuration.skipped:
            lines.append(f"skipped {configuration.label}: {configuration.skipped}")
        if configuration.error:
            lines.append(f"FAILED {configuration.label}: {configuration.error}")
    lines.append("targets:")
    for target in results.targets:
        detail = f" ({target.detail})" if target.detail else ""
        lines.append(
            f"  [{'met' if target.met else 'missed'}] {target.name} {target.threshold}: "
            f"{_ratio(target.value)}{detail}"
        )
    lines.append(
        f"took {results.elapsed_s:.0f} s; load average {results.machine.load_average[0]:.2f} "
        f"before, {results.load_average_after[0]:.2f} after"
    )
    return "\n".join(lines)
