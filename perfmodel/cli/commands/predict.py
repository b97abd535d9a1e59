"""`perfmodel predict`: TTFT, TPOT, end-to-end time, throughput, memory, operator breakdown."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from perfmodel.cli.commands.common import check_context, deployment_of, fmt_si, fmt_time
from perfmodel.cli.option_groups import DEPLOYMENT, DTYPES_MODE_PROFILE, option_group
from perfmodel.cli.typer_app import (
    BatchOpt,
    BeyondContextOpt,
    JsonOpt,
    OutputOpt,
    PromptOpt,
    app,
    console,
    emit_json,
)
from perfmodel.core.basis import basis_by_class
from perfmodel.core.breakdown import breakdown_rows
from perfmodel.core.deployment import basis_label as basis
from perfmodel.core.options import DeploymentOptions
from perfmodel.errors import OutOfMemoryError
from perfmodel.planners.feasibility import deployment_topology, memory_verdict
from perfmodel.specs.units import parse_size_list


@app.command()
@option_group(
    "target",
    DEPLOYMENT,
    after={"output_len": DTYPES_MODE_PROFILE, "strict": ("allow_cross_node_tp",)},
)
def predict(
    *,
    target: DeploymentOptions,
    batch: BatchOpt = "1",
    prompt_len: PromptOpt = "4k",
    output_len: OutputOpt = "256",
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 when it does not fit in memory.")
    ] = False,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """Predict TTFT, TPOT, e2e latency, throughput and memory per GPU (lists sweep)."""
    from perfmodel.core.api import predict_arrays

    b = np.array(parse_size_list(batch, "--batch"), float)
    p = np.array(parse_size_list(prompt_len, "--prompt-len"), float)
    o = np.array(parse_size_list(output_len, "--output-len"), float)
    dep = deployment_of(target)
    grid = np.meshgrid(b, p, o, indexing="ij")
    labels = check_context(dep.model, grid[1], grid[2], beyond_context)
    cols = predict_arrays(dep, *(g.ravel() for g in grid))
    n = cols["batch"].size

    def row(i: int) -> dict:
        return {
            "batch": int(cols["batch"][i]),
            "prompt_len": int(cols["prompt_len"][i]),
            "output_len": int(cols["output_len"][i]),
            "ttft_s": float(cols["ttft_s"][i]),
            "tpot_s": float(cols["tpot_s"][i]),
            "e2e_s": float(cols["e2e_s"][i]),
            "throughput_tok_s": float(cols["throughput_tok_s"][i]),
            "memory": {
                "weights_gb": float(cols["weights_gb"][i]),
                "kv_cache_gb": float(cols["kv_cache_gb"][i]),
                "total_gb": float(cols["total_gb"][i]),
                "capacity_gb": float(cols["capacity_gb"][i]),
                "fits": bool(cols["fits"][i]),
                "missing_gb": max(0.0, float(cols["total_gb"][i] - cols["capacity_gb"][i])),
            },
        }

    rows = [row(i) for i in range(n)]
    first = rows[0]
    # the feasibility layer's memory verdict (what does not fit, by how much): the times are
    # still computed (--json keeps fits: false with its numbers), but the text leads with it
    verdict = memory_verdict(dep, *(g.ravel() for g in grid))
    oom_message = ""
    if not verdict.ok:
        why = verdict.reasons[0]
        oom_message = f"{why.message}: {why.value - why.limit:.1f} GB per GPU short"
        if strict:  # before any output: --strict answers with the error alone
            raise OutOfMemoryError(oom_message)
    prefill_bd = breakdown_rows(dep, first["batch"], first["prompt_len"], 0)
    decode_ctx = first["prompt_len"] + first["output_len"] / 2
    decode_bd = breakdown_rows(dep, first["batch"], 1, decode_ctx)
    meta = {
        "model": dep.model.name,
        "gpu": dep.gpu.name,
        "num_gpus": dep.num_gpus,
        "tp": dep.tp,
        "pp": dep.pp,
        "dp": dep.dp,
        "nodes": dep.nodes,
        "gpus_per_node": dep.gpus_per_node,
        "ep": dep.ep,
        "weight_dtype": dep.weight_dtype,
        "kv_dtype": dep.kv_dtype,
        "profile": dep.profile.name,
        "mode": dep.mode,
        "basis": basis(dep),
        "tp_across_nodes": dep.tp_spans_nodes,
        "labels": labels + list(deployment_topology(dep).labels),
        "basis_by_class": basis_by_class(dep),
    }
    from perfmodel.core.inference import table_notices

    notices = table_notices(dep, cols["batch"], cols["prompt_len"], cols["output_len"])
    if notices:
        meta["operator_table"] = notices[0]
        meta["notices"] = notices[1:]
    if dep.profile.unidentified:
        meta["unidentified"] = dict(dep.profile.unidentified)
    if json:
        payload = {**first, **meta, "breakdown": {"prefill": prefill_bd, "decode": decode_bd}}
        if n > 1:
            payload = {**meta, "rows": rows, "breakdown": payload["breakdown"]}
        emit_json(payload)
    else:
        _print_human(dep, rows, prefill_bd, decode_bd, meta, oom_message)
    from perfmodel.cli.typer_app import warn

    for notice in meta.get("notices", []):
        warn(notice)
    if oom_message and json:  # the text leads with it instead
        warn(oom_message)


def _print_human(dep, rows, prefill_bd, decode_bd, meta, oom_message: str = "") -> None:
    """The text answer. A deployment that does not fit comes first, as the feasibility
    verdict; its times follow only as hypothetical (in parentheses, said so)."""
    from perfmodel.cli.table import Table

    out = console()
    if oom_message:
        out.print(
            f"[bold red]does not fit:[/bold red] {oom_message}. It cannot run as asked: the "
            "times below in parentheses are hypothetical, what it would take with enough memory.",
            highlight=False,
        )
    out.print(f"[bold]{dep.describe()}[/bold]  ({meta['basis']})")
    if "operator_table" in meta:
        out.print(meta["operator_table"], highlight=False)
    for kind, text in meta["basis_by_class"].items():
        out.print(f"  {kind}: {text}", highlight=False)
    unidentified = meta.get("unidentified", {})
    if unidentified:  # the reasons are in the profile YAML and in --json
        out.print(
            f"not identified by profile {dep.profile.name}'s own data (set by hand, reasons in "
            f"its YAML and --json): {', '.join(unidentified)}",
            highlight=False,
        )
    table = Table(
        title="Predicted latency and memory per GPU",
        caption="(in parentheses): hypothetical, that configuration does not fit in memory"
        if oom_message
        else None,
    )
    for col in ("batch", "prompt", "output", "TTFT", "TPOT", "e2e", "tok/s", "mem/GPU", "fits"):
        table.add_column(col, justify="right")
    for r in rows:
        m = r["memory"]

        def shown(text: str, fits: bool = m["fits"]) -> str:
            return text if fits else f"({text})"

        table.add_row(
            str(r["batch"]),
            str(r["prompt_len"]),
            str(r["output_len"]),
            shown(fmt_time(r["ttft_s"])),
            shown(fmt_time(r["tpot_s"])),
            shown(fmt_time(r["e2e_s"])),
            shown(f"{r['throughput_tok_s']:.0f}"),
            f"{m['total_gb']:.1f}/{m['capacity_gb']:.1f} GB",
            "yes" if m["fits"] else f"[red]no (-{m['missing_gb']:.1f} GB)[/red]",
        )
    out.print(table)
    for title, bd in (("prefill", prefill_bd), ("decode step", decode_bd)):
        where = "first configuration, per GPU"
        if dep.pp > 1:
            where += ", last pipeline stage, one micro-batch"
        if not rows[0]["memory"]["fits"]:
            where += "; hypothetical"
        t = Table(title=f"Operator breakdown, {title} ({where})")
        for col in ("op", "time", "share", "FLOPs", "bytes", "FLOP/B", "bound"):
            t.add_column(col, justify="right" if col not in ("op", "bound") else "left")
        total = sum(r["time_s"] for r in bd) or 1.0
        for r in bd:
            t.add_row(
                r["op"],
                fmt_time(r["time_s"]),
                f"{100 * r['time_s'] / total:.1f}%",
                fmt_si(r["flops"]),
                fmt_si(r["bytes"], "B"),
                f"{r['intensity_flop_per_byte']:.1f}" if r["intensity_flop_per_byte"] else "-",
                r["bound"],
            )
        out.print(t)
