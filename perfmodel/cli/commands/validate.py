"""`perfmodel validate` and `perfmodel calibrate`: the accuracy loop."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated

import typer

from perfmodel.cli.bench_group import BENCH
from perfmodel.cli.commands.vllm_results import is_vllm_json, refuse_bench_options, validate_files
from perfmodel.cli.option_groups import option_group
from perfmodel.cli.typer_app import JsonOpt, app, console, emit_json, progress, warn
from perfmodel.core.bench_options import BenchOptions
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import parse_name_list

TablesOpt = Annotated[
    str | None,
    typer.Option(
        "--table", "--tables", help="Published table name(s), comma-separated (default: all)."
    ),
]
MeasurementsOpt = Annotated[
    Path | None,
    typer.Option(
        "--measurements",
        help="A measurement CSV (profiler output or published schema), or vLLM benchmark "
        "JSON (vllm bench serve --save-result, vllm bench latency --output-json; a file or a "
        "folder of them).",
    ),
]


def _tables(table: str | None, measurements: Path | None, profile: str | None):
    from perfmodel.accuracy.observations import build_table, published_tables

    if measurements is not None:
        tables = [
            build_table(
                measurements, name=f"measurements:{measurements.name}", profile_override=profile
            )
        ]
        notes = tables[0].notes
        if not any(t.observations for t in tables):
            why = f" ({'; '.join(notes)})" if notes else ""
            raise PerfModelError(
                f"{measurements}: no rows with status ok and a measured ttft_s or tpot_s{why}"
            )
        for note in notes:
            warn(f"{measurements}: {note}")
        return tables
    names = parse_name_list(table, "--table") if table else None
    return published_tables(names)


def _report_html(scores, path: Path, title: str) -> None:
    """A self-contained page: one predicted-vs-measured log-log scatter per table."""
    import plotly.graph_objects as go

    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Each point: one measured configuration; x = measured, y = modeled by perfmodel "
        "with the named profile. The dashed line is y = x.</p><table border=1 cellpadding=4>"
        "<tr><th>table</th><th>rows</th><th>MAPE</th><th>max APE</th><th>profile</th></tr>",
    ]
    for s in scores:
        parts.append(
            f"<tr><td>{html.escape(s.name)}</td><td>{s.rows}</td><td>{s.mape:.1%}</td>"
            f"<td>{s.max_ape:.1%}</td><td>{html.escape(s.profile)}</td></tr>"
        )
    parts.append("</table>")
    first = True
    for s in scores:
        lo = float(min(s.measured.min(), s.predicted.min())) * 0.8
        hi = float(max(s.measured.max(), s.predicted.max())) * 1.25
        fig = go.Figure(
            [
                go.Scatter(x=s.measured, y=s.predicted, mode="markers", text=s.labels, name="rows"),
                go.Scatter(
                    x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dash"}, name="y = x"
                ),
            ]
        )
        fig.update_layout(
            title=f"{s.name}: MAPE {s.mape:.1%} (modeled with profile {s.profile})",
            xaxis={"type": "log", "title": "measured (s)"},
            yaxis={"type": "log", "title": "predicted (s)"},
            width=700,
            height=500,
        )
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False))
        first = False
    parts.append("</body></html>")
    from perfmodel.planners.feasibility.outputs import write_atomic

    write_atomic(path, "\n".join(parts))  # never a half-written report


@app.command()
@option_group("bench", BENCH, after={"table": ("profile",)})
def validate(
    *,
    table: TablesOpt = None,
    measurements: MeasurementsOpt = None,
    cross_validate: Annotated[
        bool,
        typer.Option(
            "--cross-validate", help="Leave-one-table-out: refit without each table, predict it."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write an HTML report with scatter plots (out.html)."),
    ] = None,
    ops: Annotated[
        bool,
        typer.Option("--ops", help="Also score each operator class against the operator table."),
    ] = False,
    json: JsonOpt = False,
    bench: BenchOptions,
) -> None:
    """Compare predictions with published (or your own) measurements: MAPE per table; on a
    vLLM benchmark JSON, replay the run and compare its TTFT, TPOT, ITL and throughput."""
    from perfmodel.accuracy.targets import measured_verdict, misses_vs_targets, table_verdict
    from perfmodel.accuracy.validate import cross_validate as run_cv
    from perfmodel.accuracy.validate import validate_tables

    profile = bench.profile
    if is_vllm_json(measurements):
        if table or cross_validate or report is not None or ops:
            raise PerfModelError(
                "--table, --cross-validate, --report and --ops do not apply to a vLLM benchmark JSON"
            )
        validate_files(measurements, bench, json)
        return
    refuse_bench_options(bench)
    if report is not None:  # before any work: HTML, writable, never over the measurements
        from perfmodel.planners.feasibility.outputs import check_output_path

        check_output_path(report, "--report", (".html", ".htm"), {"--measurements": measurements})
    tables = _tables(table, measurements, profile)
    with progress("validating", sum(len(t.observations) for t in tables)) as advance:
        result = validate_tables(tables, profile, progress=advance)
    scores = result.scores
    for w in result.warnings:
        warn(w)
    cv = None
    if cross_validate:
        with progress("cross-validating (model evaluations)") as advance:
            cv = run_cv(tables, progress=advance)
    measured = _measured(table, measurements, profile)
    published = measurements is None  # the stated targets are for the published tables
    verdicts = {s.name: table_verdict(s) for s in scores} if published else {}
    misses = misses_vs_targets(scores, cv) if published else None
    if measured is not None:  # rendered rows: the score and its verdict against the targets
        measured = [r.as_dict() | _as_dict(measured_verdict(r)) for r in measured]
    op_rows = [r.as_dict() for r in _ops()] if ops else None
    if report is not None:
        try:
            _report_html(scores, report, "perfmodel validation")
        except OSError as exc:
            raise PerfModelError(f"cannot write report {report}: {exc.strerror}") from None
    if json:
        payload = {
            "tables": [
                {k: v for k, v in s.as_dict().items() if k != "points" or measurements is not None}
                | {"sample": "in-sample" if s.fit else "out-of-sample"}
                | _as_dict(verdicts.get(s.name))
                for s in scores
            ],
            "memory_checks": [c.as_dict() for c in result.memory_checks],
            "dropped": [n for t in tables for n in t.notes],
            "warnings": result.warnings,
        }
        if misses is not None:
            payload |= misses
        if cv is not None:
            payload["cross_validation"] = [r.as_dict() for r in cv]
            payload["cross_validation_mape"] = sum(r.mape for r in cv) / max(len(cv), 1)
        if measured is not None:
            payload["measured_tables"] = measured
        if op_rows is not None:
            payload["operator_tables"] = op_rows
        emit_json(payload)
        return
    from perfmodel.cli.table import Table

    out = console()
    t = Table(
        title="Model vs measurements (APE = |predicted - measured| / measured)",
        caption="in-sample: the profile was fitted on this table; out-of-sample: it was not; "
        "leave-one-table-out: --cross-validate",
    )
    for col in ("table", "quantity", "rows", "MAPE", "max APE", "target", "profile"):
        t.add_column(col, justify="left" if col in ("table", "quantity", "profile") else "right")
    for s in scores:
        table_name, _, quantity = s.name.partition("/")
        flag = " (in-sample)" if s.fit else " (out-of-sample)"
        v = verdicts.get(s.name)
        goal = f"<= {v.target_mape:.0%} {'met' if v.meets_target else 'MISSED'}" if v else ""
        t.add_row(
            table_name + flag,
            quantity,
            str(s.rows),
            f"{s.mape:.1%}",
            f"{s.max_ape:.1%}",
            goal,
            s.profile,
        )
    out.print(t)
    out.print("worst row per table:")
    for s in scores:
        out.print(f"  {s.name}: {s.worst}", highlight=False)
    for check in result.memory_checks:
        verdict = "agrees" if check.agrees else "DISAGREES"
        out.print(
            f"OOM check {check.table} [{check.label}]: published OOM, model needs "
            f"{check.total_gb:.1f} of {check.capacity_gb:.1f} GB per GPU -> {verdict}"
        )
    if cv is not None:
        c = Table(title="Leave-one-table-out cross-validation (out-of-sample)")
        for col in ("held-out table / quantity", "profile", "rows", "MAPE", "max APE"):
            c.add_column(col)
        for r in cv:
            c.add_row(r.held_out, r.profile, str(r.rows), f"{r.mape:.1%}", f"{r.max_ape:.1%}")
        out.print(c)
    _print_measured(out, measured, op_rows)
    if misses is not None:
        _print_misses(out, misses)
    if report is not None:
        out.print(f"report written to {report}")


def _print_misses(out, misses: dict) -> None:
    """Known misses vs the stated targets (perfmodel/accuracy/targets.py), with reasons."""
    from perfmodel.accuracy.targets import ROW_APE, ROW_APE_OTHER, SOURCE

    rows = ", ".join(f"{q} {v:.0%}" for q, v in ROW_APE.items())
    out.print(
        f"Known misses vs stated targets (from {SOURCE}; per published row: APE <= {rows}, "
        f"other quantities {ROW_APE_OTHER:.0%}; list: validation/known_misses.yaml):",
        highlight=False,
    )
    if not misses["known_misses"] and not misses["unlisted_misses"]:
        out.print("  none in the tables validated")
    for m in misses["known_misses"]:
        where = f"{m['table']}/{m['quantity']} {m['scope']}"
        where += f" (line {m['line']})" if m["line"] is not None else ""
        if m["value"] is None:
            now = m["note"]
        else:
            now = f"{m['value']:.1%} -> {'misses' if m['misses'] else 'NO LONGER MISSES'}"
            now += " (WORSE THAN WHEN LISTED)" if m["worse_than_listed"] else ""
        out.print(
            f"  {where}: target <= {m['target']:.0%}, ceiling {m['ceiling']:.2%}, now {now}",
            highlight=False,
        )
        out.print(f"    why: {m['reason']}", highlight=False)
    for m in misses["unlisted_misses"]:
        where = f"{m['table']}/{m['quantity']} {m['scope']}"
        where += f" (line {m['line']})" if m["line"] is not None else ""
        out.print(
            f"  UNLISTED MISS {where}: {m['value']:.1%} > target {m['target']:.0%}",
            highlight=False,
        )


def _as_dict(record) -> dict:
    """A typed accuracy record as JSON fields ({} for None)."""
    return {} if record is None else record.as_dict()


def _measured(table, measurements, profile):
    """The measured tables (validation/measurements/*.csv) on a default run, else None."""
    if table or measurements is not None:
        return None
    from perfmodel.accuracy.measured import measured_report

    return measured_report(profile)


def _ops():
    from perfmodel.accuracy.measured import ops_report, transfer_report

    return ops_report() + transfer_report()


def _print_measured(out, measured, op_rows) -> None:
    from perfmodel.cli.table import Table

    if measured:
        m = Table(
            title="Measured tables (bias = mean of predicted/measured - 1)",
            caption="target: MAPE / bias / max APE of the fitted points",
        )
        for col in (
            "table / quantity",
            "sample",
            "profile",
            "rows",
            "MAPE",
            "bias",
            "max APE",
            "target (in-sample)",
        ):
            m.add_column(col)
        for r in measured:
            goal = ""
            if "meets_target" in r:
                goal = (
                    f"{r['target_mape']:.0%} / ±{r['target_bias']:.1%} / "
                    f"{r['target_max_ape']:.0%}: " + ("met" if r["meets_target"] else "MISSED")
                )
            m.add_row(
                f"{r['table']}/{r['quantity']}",
                r["sample"],
                r["profile"],
                str(r["rows"]),
                f"{r['mape']:.1%}",
                f"{r['bias']:+.1%}",
                f"{r['max_ape']:.1%}",
                goal,
            )
        out.print(m)
    if op_rows:
        o = Table(title="Operator table: model vs measured kernel times, per operator class")
        for col in ("op", "sample", "rows", "MAPE", "bias", "max APE"):
            o.add_column(col)
        for r in op_rows:
            o.add_row(
                r["op"],
                r["sample"],
                str(r["rows"]),
                f"{r['mape']:.1%}",
                f"{r['bias']:+.1%}",
                f"{r['max_ape']:.1%}",
            )
        out.print(o)
