"""Capacity reports: self-contained HTML (plotly, its JS inlined once) and Markdown.

Both carry the same tables (options, how each option's times are priced per operator class,
assumptions); every figure says "modeled" and names the profile; user-given names are
HTML-escaped. plotly is imported only when an HTML report is written.
"""

from __future__ import annotations

import html
from pathlib import Path

from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility.outputs import write_atomic

OPTION_COLUMNS = (
    ("gpu", "GPU"),
    ("with_spec", "spec"),
    ("weight_dtype", "weights"),
    ("kv_dtype", "KV"),
    ("layout", "replicas x TP PP"),
    ("gpus_nodes", "GPUs (nodes)"),
    ("batch", "batch"),
    ("cost_per_hour", "USD/h"),
    ("cost_per_mtok", "USD/Mtok"),
    ("ttft_s", "TTFT p90 (s)"),
    ("tpot_s", "TPOT (s)"),
    ("sim_ttft", "sim TTFT p50/p90 (s)"),
    ("meets_slo", "meets SLO"),
)


def _cell(option: dict, key: str) -> str:
    if key == "with_spec" and option.get("with_spec"):
        # the basis of the speculation this option uses (acceptance of its MagicDec draft)
        basis = (option.get("speculation") or {}).get("acceptance")
        return f"yes ({basis})" if basis else "yes"
    if key == "layout":  # DP replicas of TP (inside a node) x PP stages
        if option.get("tp") is None:
            return "-"
        pp = option.get("pp") or 1
        return f"{option['replicas']} x TP{option['tp']}" + (f" PP{pp}" if pp > 1 else "")
    if key == "gpus_nodes":
        if option.get("gpus_needed") is None:
            return "-"
        return f"{option['gpus_needed']} ({option['nodes']})"
    if key == "sim_ttft":
        sim = option.get("simulation") or {}
        if sim.get("ttft_p50_s") is None:
            return "-"
        return f"{sim['ttft_p50_s']:.3g}/{sim['ttft_p90_s']:.3g}"
    value = option.get(key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if key.startswith("cost") else f"{value:.3g}"
    return str(value)


def option_rows(plan: dict) -> list[list[str]]:
    return [[_cell(o, k) for k, _ in OPTION_COLUMNS] for o in plan["options"]]


BASIS_COLUMNS = ("option", "operator class", "priced by")


def basis_rows(plan: dict) -> list[list[str]]:
    """(option, operator class, how its times are priced) for every option with a fleet:
    its basis_by_class (core.basis; measured / transferred / roofline), as recommend gives."""
    rows = []
    for o in plan["options"]:
        for kind, words in (o.get("basis_by_class") or {}).items():
            name = f"{o['gpu']}{' + spec' if o.get('with_spec') else ''} {_cell(o, 'layout')} "
            rows.append([name + f"{o['weight_dtype']}/{o['kv_dtype']}", kind, words])
    return rows


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_report(plan: dict) -> str:
    wl, slo = plan["workload"], plan["slo"]
    lines = [
        f"# Capacity plan: {_md_escape(plan['model'])}",
        "",
        f"Modeled, profile {_md_escape(plan['profile'])}. QPS {wl['qps']:.3g}, prompt "
        f"{wl['prompt_len_mean']:.0f} mean / {wl['prompt_len_p90']:.0f} p90, output "
        f"{wl['output_len_mean']:.0f} mean / {wl['output_len_p90']:.0f} p90; SLO TTFT "
        f"{slo['ttft_s']:g} s, TPOT {slo['tpot_s']:g} s.",
        "",
        f"Objective: {_md_escape(plan.get('objective', 'cost per hour'))}. "
        f"Why: {_md_escape(plan.get('why', ''))}",
        "",
        "## Options (cheapest per GPU type, ranked)",
        "",
        "| " + " | ".join(h for _, h in OPTION_COLUMNS) + " |",
        "|" + "|".join("---" for _ in OPTION_COLUMNS) + "|",
    ]
    for row in option_rows(plan):
        lines.append("| " + " | ".join(_md_escape(c) for c in row) + " |")
    lines += ["", "## How each option's times are priced", ""]
    lines += ["| " + " | ".join(BASIS_COLUMNS) + " |", "|---|---|---|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in basis_rows(plan)]
    lines += ["", "## Assumptions", ""]
    lines += [f"- {_md_escape(a)}" for a in plan["assumptions"]]
    lines.append("")
    return "\n".join(lines)


def _table_html(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(plan: dict, curves: dict, critical: dict | None) -> list:
    """plotly figures: cost vs QPS, TTFT/TPOT vs batch with SLO lines, critical length."""
    import plotly.graph_objects as go

    prof = plan["profile"]
    slo = plan["slo"]
    figs = []
    fig = go.Figure()
    for label, cur in curves.items():
        cost = [c if c != float("inf") else None for c in cur["cost_per_hour"]]
        fig.add_trace(go.Scatter(x=cur["qps"], y=cost, mode="lines", name=label))
    fig.add_vline(x=plan["workload"]["qps"], line_dash="dot")
    fig.update_layout(
        title=f"Cost per hour vs QPS (modeled, profile {prof})",
        xaxis_title="QPS",
        yaxis_title="USD per hour",
        xaxis_type="log",
    )
    figs.append(fig)
    fig = go.Figure()
    for label, cur in curves.items():
        if "batch" not in cur:
            continue
        name = f"{label} {cur['config']}"
        fig.add_trace(go.Scatter(x=cur["batch"], y=cur["ttft_s"], name=f"TTFT {name}"))
        fig.add_trace(go.Scatter(x=cur["batch"], y=cur["tpot_s"], name=f"TPOT {name}", yaxis="y2"))
    fig.add_hline(y=slo["ttft_s"], line_dash="dash", annotation_text="TTFT SLO")
    fig.add_hline(y=slo["tpot_s"], line_dash="dot", annotation_text="TPOT SLO", yref="y2")
    fig.update_layout(
        title=f"TTFT (prefill + one step, unloaded) and decode step vs batch (modeled, profile {prof})",
        xaxis_title="batch",
        xaxis_type="log",
        yaxis_title="TTFT (s)",
        yaxis2={"title": "TPOT (s)", "overlaying": "y", "side": "right"},
    )
    figs.append(fig)
    if critical:
        figs.append(critical_figure(critical, prof))
    return figs


def critical_figure(critical: dict, prof: str):
    """Critical length vs batch: lengths as points on a log axis; batches where speculation
    pays at every context (or at none) as labeled bands, never as a number of tokens."""
    import plotly.graph_objects as go

    xs = critical["batch"]
    lengths = critical["critical_seq_len"]
    every = critical.get("pays_at_every_context", [False] * len(xs))
    fig = go.Figure()
    pts = [(b, n) for b, n in zip(xs, lengths, strict=True) if n is not None]
    if pts:
        fig.add_trace(
            go.Scatter(
                x=[b for b, _ in pts], y=[n for _, n in pts], mode="lines+markers",
                name="critical length",
            )
        )  # fmt: skip
    for b, n, e in zip(xs, lengths, every, strict=True):
        if n is None:
            label = "pays at every context" if e else "does not pay at any context"
            fig.add_vrect(
                x0=b / 1.25, x1=b * 1.25, fillcolor="green" if e else "gray", opacity=0.15,
                line_width=0, annotation_text=f"batch {b:g}: {label}",
                annotation_position="top left", annotation_textangle=-90,
            )  # fmt: skip
    fig.update_layout(
        title=f"MagicDec critical sequence length vs batch, {critical['gpu']} "
        f"{critical['config']} (modeled, profile {prof}, acceptance {critical['acceptance']})",
        xaxis_title="batch",
        yaxis_title="critical sequence length (tokens)",
        xaxis_type="log",
        yaxis_type="log",
    )
    return fig


def html_report(plan: dict, curves: dict, critical: dict | None) -> str:
    figs = figures(plan, curves, critical)
    divs = [
        f.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, f in enumerate(figs)
    ]
    wl = plan["workload"]
    items = "".join(f"<li>{html.escape(a)}</li>" for a in plan["assumptions"])
    title = html.escape(f"Capacity plan: {plan['model']}")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}</style></head><body>"
        f"<h1>{title}</h1><p>Modeled, profile {html.escape(plan['profile'])}. QPS "
        f"{wl['qps']:.3g}; workload: {html.escape(wl['source'])}.</p>"
        f"<p>Why: {html.escape(plan.get('why', ''))}</p>"
        "<h2>Options (cheapest per GPU type, ranked)</h2>"
        + _table_html([h for _, h in OPTION_COLUMNS], option_rows(plan))
        + "<h2>How each option's times are priced</h2>"
        + _table_html(BASIS_COLUMNS, basis_rows(plan))
        + "".join(divs)
        + f"<h2>Assumptions</h2><ul>{items}</ul></body></html>"
    )


def write_report(path, plan: dict, curves: dict, critical: dict | None) -> str:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = html_report(plan, curves, critical)
    elif suffix == ".md":
        text = markdown_report(plan)
    else:
        raise PerfModelError(f"--report must end in .html or .md, got '{path.name}'")
    write_atomic(path, text)  # feasibility.outputs: never a half-written report
    return str(path)
