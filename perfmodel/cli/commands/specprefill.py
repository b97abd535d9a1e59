"""`perfmodel specprefill`: plan SpecPrefill (keep rate, speedup, break-even length, max QPS)."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.commands.common import check_context, deployment_of, fmt_time
from perfmodel.cli.option_groups import DEPLOYMENT, DTYPES_MODE_PROFILE, option_group
from perfmodel.cli.typer_app import (
    BatchOneOpt,
    BeyondContextOpt,
    JsonOpt,
    PromptOneOpt,
    app,
    console,
    emit_json,
    known_dtype,
    warn,
)
from perfmodel.core.deployment import basis_label as basis
from perfmodel.core.options import DeploymentOptions
from perfmodel.planners.feasibility import deployment_topology
from perfmodel.specs.units import parse_float_list, parse_one_size, plural


@app.command()
@option_group(
    "options",
    DEPLOYMENT,
    exclude=("pp", "ep"),
    after={
        "speculator": ("gpu", "num_gpus", "tp"),
        "slo_ttft": (*DTYPES_MODE_PROFILE, "allow_cross_node_tp"),
    },
    model="70b",
    num_gpus=8,
)
def specprefill(
    *,
    options: DeploymentOptions,
    speculator: Annotated[
        str, typer.Option("--speculator", "-s", help="Speculator model (alias, name or path).")
    ] = "8b",
    batch: BatchOneOpt = "16",
    prompt_len: PromptOneOpt = "32k",
    keep_rate: Annotated[
        str,
        typer.Option("--keep-rate", "-k", help="Keep rate(s) in (0, 1], e.g. 0.1,0.3."),
    ] = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
    max_quality_drop: Annotated[
        float,
        typer.Option("--max-quality-drop", help="Max LongBench-average points lost (default 1)."),
    ] = 1.0,
    lookahead: Annotated[
        int, typer.Option("--lookahead", min=0, help="Speculator look-ahead decode steps.")
    ] = 8,
    speculator_gpus: Annotated[
        int | None,
        typer.Option(
            "--speculator-gpus",
            min=1,
            help="Put the speculator on its own N GPUs (TP N, per target replica); stages "
            "pipeline for QPS. Default: on the target's GPUs.",
        ),
    ] = None,
    speculator_weight_dtype: Annotated[
        str | None,
        typer.Option(
            "--speculator-weight-dtype",
            callback=known_dtype("weight"),
            help="Speculator weights: bf16 | fp8 | int4 (default bf16, as in the paper).",
        ),
    ] = None,
    slo_ttft: Annotated[
        float | None,
        typer.Option(
            "--slo-ttft", help="TTFT SLO in seconds for max QPS (default 2x batch-1 TTFT)."
        ),
    ] = None,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """SpecPrefill: TTFT and speedup per keep rate, recommended keep rate under a quality
    budget, break-even prompt length, and max QPS under a TTFT SLO."""
    from perfmodel.planners.specprefill import plan_specprefill
    from perfmodel.planners.speculation.deploy import helper_deployment

    target = deployment_of(options)
    spec = helper_deployment(
        target, speculator, "speculator", speculator_weight_dtype, num_gpus=speculator_gpus
    )
    b = _one(batch, "--batch")
    L = _one(prompt_len, "--prompt-len")
    labels = check_context(target.model, L, 0, beyond_context)
    keeps = parse_float_list(keep_rate, "--keep-rate")
    plan = plan_specprefill(
        target,
        spec,
        b,
        L,
        keeps,
        lookahead=lookahead,
        max_quality_drop=max_quality_drop,
        slo_ttft_s=slo_ttft,
        colocated=speculator_gpus is None,
        beyond_context=beyond_context,
    )
    payload = {
        "model": target.model.name,
        "speculator": spec.model.name,
        "gpu": target.gpu.name,
        "num_gpus": target.num_gpus,
        "tp": target.tp,
        "weight_dtype": target.weight_dtype,
        "speculator_weight_dtype": spec.weight_dtype,
        "kv_dtype": target.kv_dtype,
        "profile": target.profile.name,
        "mode": target.mode,
        "basis": basis(target),
        "labels": labels + list(deployment_topology(target).labels),
        **plan.as_dict(),
    }
    payload["verdict"] = verdict(payload)
    if not plan.baseline_fits or not all(r["fits"] for r in payload["rows"]):
        warn(
            f"batch {b} x {L} tokens does not fit in GPU memory for the baseline and/or some keep "
            "rates (see 'fits'); times are modeled as if it did"
        )
    if json:
        emit_json(payload)
    else:
        _print_human(payload)


def _one(text: str, what: str) -> int:
    return parse_one_size(text, what, "specprefill (sweep --keep-rate instead)")


def verdict(p: dict) -> str:
    """One paragraph: what to do, how much it buys, and on what it rests."""
    q = p["qps"]
    rec = p["recommended_keep_rate"]
    slo = f"{q['slo_ttft_s']:.3g} s" + (
        " (default: 2x batch-1 baseline TTFT)" if q["slo_is_default"] else ""
    )
    unmeasured = [r["keep_rate"] for r in p["rows"] if r["quality"]["extrapolated"]]
    best = max(p["rows"], key=lambda r: r["speedup"])
    text = []
    if p["best_keep_rate"] is None:
        text.append(
            f"Skip SpecPrefill: no keep rate meets the quality budget of "
            f"{plural(float(p['max_quality_drop']), 'LongBench point')} (lowest keep rate "
            "within it: "
            f"{p['quality_min_keep_rate']:.2f}); the fastest candidate is keep "
            f"{best['keep_rate']:g} at {best['speedup']:.2f}x."
        )
    elif rec is None:
        text.append(f"{p['reason'][0].upper()}{p['reason'][1:]}.")
    else:
        text.append(
            f"Use keep rate {rec:g}: TTFT {fmt_time(p['baseline_ttft_s'])} -> "
            f"{fmt_time(next(r['ttft_s'] for r in p['rows'] if r['keep_rate'] == rec))} "
            f"({p['recommended_speedup']:.2f}x) for batch {p['batch']} x {p['prompt_len']} tokens, "
            f"within {plural(float(p['max_quality_drop']), 'LongBench point')}."
        )
        be = p["break_even_prompt_len"]
        text.append(
            f"It pays from {be} prompt tokens on."
            if be
            else "It never pays within the context window."
        )
    if best["keep_rate"] != rec and best["speedup"] > 1.0:
        text.append(
            f"Fastest overall: keep {best['keep_rate']:g} at {best['speedup']:.2f}x"
            + (" (outside the quality budget)." if not best["meets_quality"] else ".")
        )
    if q["improvement"] is not None:
        text.append(
            f"Max QPS under a TTFT SLO of {slo}: {q['baseline']:.3g} -> {q['specprefill']:.3g} "
            f"({q['improvement']:.2f}x, keep {q['keep_rate']:g}"
            + ("" if q["keep_rate"] == rec else ", not a recommended setting")
            + (
                f", {plural(q['specprefill_gpus'], 'GPU')} vs {q['baseline_gpus']}, "
                "stages pipelined"
                if q["pipelined"]
                else ""
            )
            + ")."
        )
    else:
        text.append(f"The baseline cannot meet the TTFT SLO of {slo} at any batch.")
    if unmeasured:
        text.append(
            f"Quality at keep rates {', '.join(f'{k:g}' for k in unmeasured)} is unmeasured "
            "(below the lowest published keep rate), so they are never recommended."
        )
    text.append(
        f"Quality is the published Llama-3.1-8B-Instruct LongBench table, used as a proxy; times are {p['basis']}."
    )
    return " ".join(text)


def _print_human(p: dict) -> None:
    from perfmodel.cli.table import Table

    out = console()
    place = (
        f"speculator {p['speculator']} on the same GPUs"
        if p["speculator_placement"] == "first_stage"
        else f"speculator {p['speculator']} on its own {plural(p['speculator_gpus'], 'GPU')}"
    )
    out.print(
        f"[bold]SpecPrefill: {p['model']} on {p['num_gpus']}x {p['gpu']} (TP{p['tp']}, "
        f"{p['weight_dtype']}), {place}[/bold]  ({p['basis']})"
    )
    out.print(
        f"batch {p['batch']}, prompt {p['prompt_len']} tokens, look-ahead {p['lookahead']}: "
        f"baseline TTFT {fmt_time(p['baseline_ttft_s'])}"
    )
    table = Table(title="TTFT per keep rate")
    for col in ("keep", "TTFT", "speculator", "target", "speedup", "LongBench drop", "QPS", "fits"):
        table.add_column(col, justify="right")
    for r in p["rows"]:
        qd = r["quality"]
        drop = "unmeasured" if qd["extrapolated"] else f"{qd['drop']:.2f}"
        mark = " *" if r["keep_rate"] == p["recommended_keep_rate"] else ""
        table.add_row(
            f"{r['keep_rate']:g}{mark}",
            fmt_time(r["ttft_s"]),
            fmt_time(r["speculator_s"]),
            fmt_time(r["target_s"]),
            f"{r['speedup']:.2f}x",
            drop if r["meets_quality"] or qd["extrapolated"] else f"[red]{drop}[/red]",
            f"{r['qps']:.3g}",
            "yes" if r["fits"] else "[red]no[/red]",
        )
    out.print(table)
    out.print(("* recommended. " if p["pays"] else "") + p["verdict"])
