"""Writing the results: ``latest.json`` (every number), ``latest.md`` (the targets, the
tables and ratios), ``latest.png`` (each target's measured ratios against its line),
and the summary printed at the end of a run, which holds the same targets table.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import stages, targets
from benchmarks.results import (
    ENDPOINTS,
    HELLO,
    ISSUE_TOKEN,
    MET,
    NOT_MEASURED,
    Configuration,
    EndpointRun,
    Results,
    Target,
)

if TYPE_CHECKING:  # matplotlib is imported when the chart is drawn, not with the report
    from matplotlib.axes import Axes

JSON_NAME = "latest.json"
MARKDOWN_NAME = "latest.md"
CHART_NAME = "latest.png"
TARGETS_HEADING = "## Targets"
TARGETS_HEADER = ["measure", "value", "target", "result", "note"]
ISSUE_HEADING = "## issue-token against hello, 1 worker"
RATIO_HEADING = "## Ratios to hello"
EFFICIENCY_HEADING = "## 2 workers: server CPU efficiency"
STAGES_HEADING = "## Where issue-token's time goes (in process, one core)"
LOG_HEADING = "## The transparency log: issue-token, log on / log off, 1 worker"


def write(results: Results, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / JSON_NAME, out / MARKDOWN_NAME, out / CHART_NAME]
    paths[0].write_text(
        json.dumps(asdict(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    paths[1].write_text(markdown(results), encoding="utf-8")
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


def target_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per target: its worst measured value, the target, met or missed."""
    rows = [
        [t.name, _ratio(t.value), t.threshold, t.status, t.detail.replace("|", "/")]
        for t in results.targets
    ]
    return TARGETS_HEADER, rows


def issue_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """issue-token next to hello on one worker: throughput and latency, and the ratios
    the targets speak about."""
    header = [
        "configuration",
        "conns",
        "hello req/s",
        "issue-token req/s",
        "req/s ratio",
        "hello p50 / p99 ms",
        "issue-token p50 / p99 ms",
        "p99 ratio",
    ]
    rows: list[list[str]] = []
    for configuration in _measured(results):
        if configuration.workers != 1:
            continue
        for connections in results.plan.connections:
            hello = configuration.run(HELLO, connections)
            issued = configuration.run(ISSUE_TOKEN, connections)
            if hello is None or issued is None:
                continue
            rows.append(
                [
                    configuration.label,
                    str(connections),
                    f"{hello.load.requests_per_s:,.0f}",
                    f"{issued.load.requests_per_s:,.0f}",
                    _ratio(issued.ratio_to_hello),
                    f"{hello.load.p50_ms:.2f} / {hello.load.p99_ms:.2f}",
                    f"{issued.load.p50_ms:.2f} / {issued.load.p99_ms:.2f}",
                    _ratio(issued.p99_to_hello),
                ]
            )
    return header, rows


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


def log_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """issue-token at the issuer (its transparency log on) and at the same issuer with
    the log off, from their alternating slices."""
    header = [
        "database",
        "conns",
        "slices each",
        "log on req/s",
        "log off req/s",
        "on ÷ off",
        "req per CPU-s on / off",
        "on ÷ off (CPU)",
        "log on req/s by slice",
        "log off req/s by slice",
    ]
    rows = []
    for point in targets.log_points(results):
        on, off = point.cost.on, point.cost.off
        rows.append(
            [
                point.database,
                str(point.cost.connections),
                str(len(on.slices)),
                f"{on.requests_per_s:,.0f}",
                f"{off.requests_per_s:,.0f}",
                _ratio(point.cost.ratio),
                f"{on.requests_per_cpu_s or 0:,.0f} / {off.requests_per_cpu_s or 0:,.0f}",
                _ratio(point.cost.cpu_ratio),
                " ".join(f"{run.requests_per_s:,.0f}" for run in on.slices),
                " ".join(f"{run.requests_per_s:,.0f}" for run in off.slices),
            ]
        )
    return header, rows


def efficiency_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    header = [
        "database",
        "conns",
        "endpoint",
        "req per CPU-s, 1 worker",
        "req per CPU-s, 2 workers",
        "2w ÷ 1w",
        "worker shares (2w)",
        "balanced",
    ]
    rows = [
        [
            e.database,
            str(e.connections),
            e.endpoint,
            f"{e.one_worker:,.0f}",
            f"{e.two_workers:,.0f}",
            _ratio(e.ratio),
            "/".join(f"{s:.2f}" for s in e.shares),
            "yes" if e.balanced else "NO",
        ]
        for e in results.efficiency
    ]
    return header, rows


def _shares(run: EndpointRun) -> str:
    if run.cpu is None or run.cpu.balance.workers < 2:
        return ""
    return "/".join(f"{s:.2f}" for s in run.cpu.balance.shares)


def run_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    header = ["configuration", "conns", "endpoint", "req/s", "p50 ms", "p99 ms", "errors"]
    header += ["x hello", "server CPU s", "req per CPU-s", "CPU shares"]
    rows: list[list[str]] = []
    for configuration in results.configurations:
        if configuration.skipped or configuration.error:
            why = configuration.skipped or configuration.error or ""
            rows.append([configuration.label, "", f"not measured: {why}", *[""] * 8])
        for run in configuration.runs:
            per_cpu = run.requests_per_cpu_s
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
                    f"{run.cpu.seconds:.2f}" if run.cpu else "-",
                    f"{per_cpu:,.0f}" if per_cpu else "-",
                    _shares(run),
                ]
            )
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
        "are differences of measured ones. A lone request's wall time mostly waits (for a "
        "flush, a round trip); what bounds throughput is CPU per request with requests "
        "in flight. Bound: hello's CPU per request over issue-token's, under load, in "
        "process: the best ratio to hello this path could reach before the HTTP server's "
        "own cost.",
    ]
    if not results.stages:
        lines += ["", "not measured"]
    for breakdown in results.stages:
        lines += ["", f"### {breakdown.database}", ""]
        if breakdown.skipped or breakdown.error:
            lines.append(f"not measured: {breakdown.skipped or breakdown.error}")
            continue
        lines += _table(["stage", "µs", "share"], stages.table(breakdown))
        load = breakdown.under_load
        lines += [
            "",
            "Under load, CPU per request (µs, 16 in flight): "
            + ", ".join(f"{name} {value:,.0f}" for name, value in load.items()),
            "",
            f"bound (hello / request, CPU under load, in process): "
            f"**{_ratio(breakdown.bound)}**; "
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
        TARGETS_HEADING,
        "",
        "Each target's worst value over what it covers (the note says what); "
        '"not measured" when nothing it covers ran.',
        "",
        *_table(*target_rows(results)),
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
    lines += ["", *stage_section(results), "", ISSUE_HEADING, ""]
    lines += [
        "Throughput and latency of each issue-token run next to the hello run just before "
        "it; the ratios are issue-token's over hello's.",
        "",
        *_table(*issue_rows(results)),
        "",
        RATIO_HEADING,
        "",
        "Requests per second of each endpoint over hello's, same server configuration and "
        "connections.",
        "",
        *_table(*ratio_rows(results)),
        "",
        LOG_HEADING,
        "",
        "issue-token at the issuer (its transparency log on, as by default) and at the same "
        "issuer with the log off (`FEDERATION_TRANSPARENCY_LOG=off`, a database of its own), "
        "in alternating slices (on, off, off, on, ...) that add up to a timed run each; "
        "req/s is each side's requests over its slices' time, and req per CPU-s its "
        "server's CPU time over its slices. After every issue-token run the log's entries "
        "are counted with the audit rows: as many with the log on, none with it off.",
        "",
        *_table(*log_rows(results)),
        "",
        EFFICIENCY_HEADING,
        "",
        "Requests answered per CPU-second of the server's processes (the granian parent and "
        "its workers, user + system time read from /proc before and after each timed run), "
        "with 2 workers over the same with 1: what a second worker costs, whatever share "
        "of the cores the load generator takes. A database server's own processes are not "
        "counted. Balanced: every worker did at least 0.35 of the workers' CPU time.",
        "",
        *_table(*efficiency_rows(results)),
        "",
        "## Checks",
        "",
        f"- audit rows match the tokens issued, and the log's entries the audit rows: "
        f"{'yes' if results.checks.audit else 'NO'}",
        f"- a deleted key is refused at once (401): "
        f"{'yes' if results.checks.deleted_key else 'NO'}",
        "",
        "## Every run",
        "",
        *_table(*run_rows(results)),
    ]
    return "\n".join(lines) + "\n"


def chart(results: Results, path: Path) -> None:
    """One panel per target: a bar per measured point, green when it meets the target,
    red when it misses, and the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 4
    count = max(1, len(results.targets))
    rows = -(-count // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False, constrained_layout=True
    )
    panels = [ax for row in axes for ax in row]
    for ax, target in zip(panels, results.targets, strict=False):
        _panel(ax, target)
    for ax in panels[len(results.targets) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"federation benchmarks — {results.machine.date}: each target's measured values "
        "(green: meets it, red: misses it) and the target (dashed)"
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _panel(ax: Axes, target: Target) -> None:
    ax.set_title(textwrap.fill(target.name, 38), fontsize="small")
    line = f"target {target.threshold}"
    ax.axhline(target.limit, color="black", linestyle="--", linewidth=1, label=line)
    if target.status == NOT_MEASURED or not target.points:
        ax.text(0.5, 0.5, NOT_MEASURED, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    else:
        labels = [point.label for point in target.points]
        values = [point.value for point in target.points]
        colors = ["tab:green" if point.met else "tab:red" for point in target.points]
        bars = ax.bar(range(len(values)), values, width=0.6, color=colors)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize="x-small")
        ax.set_xticks(range(len(labels)), labels, fontsize="x-small", rotation=30, ha="right")
        pad = max(0, 3 - len(values)) / 2  # a lone bar stays a bar, not a wall
        ax.set_xlim(-0.5 - pad, len(values) - 0.5 + pad)
    top = max([target.limit, *(point.value for point in target.points)])
    ax.set_ylim(0, top * 1.2)
    ax.legend(fontsize="x-small", loc="upper left")
    color = {MET: "tab:green", NOT_MEASURED: "tab:gray"}.get(target.status, "tab:red")
    ax.set_xlabel(target.status, fontsize="small", color=color)
    ax.grid(axis="y", alpha=0.3)


def summary(results: Results) -> str:
    """The ratios, the checks and the targets table, for the terminal."""
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
    lines.append("2 workers, req per server CPU-s, 2w / 1w: " + "  ".join(ENDPOINTS))
    for database in dict.fromkeys(e.database for e in results.efficiency):
        for connections in results.plan.connections:
            found = {
                e.endpoint: e.ratio
                for e in results.efficiency
                if e.database == database and e.connections == connections
            }
            if found:
                cells = "  ".join(_ratio(found.get(endpoint)) for endpoint in ENDPOINTS)
                lines.append(f"  {database}, c{connections}: {cells}")
    log_points = targets.log_points(results)
    if log_points:
        lines.append(
            "issue-token, log on / log off (req/s): "
            + "  ".join(f"{point.label} {_ratio(point.cost.ratio)}" for point in log_points)
        )
    lines.append(
        f"checks: audit {'ok' if results.checks.audit else 'FAILED'}, "
        f"deleted key 401 {'ok' if results.checks.deleted_key else 'FAILED'}"
    )
    for configuration in results.configurations:
        if configuration.skipped:
            lines.append(f"skipped {configuration.label}: {configuration.skipped}")
        if configuration.error:
            lines.append(f"FAILED {configuration.label}: {configuration.error}")
    lines += ["", "targets:", *_table(*target_rows(results)), ""]
    lines.append(
        f"took {results.elapsed_s:.0f} s; load average {results.machine.load_average[0]:.2f} "
        f"before, {results.load_average_after[0]:.2f} after"
    )
    return "\n".join(lines)
