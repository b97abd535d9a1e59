"""`perfmodel recommend`: precision, SpecPrefill and MagicDec settings for one workload."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from perfmodel.cli.option_groups import DEPLOYMENT_PINS, option_group
from perfmodel.cli.typer_app import (
    BatchOneOpt,
    BeyondContextOpt,
    JsonOpt,
    OutputOpt,
    PromptOneOpt,
    app,
    console,
    emit_json,
    warn,
)
from perfmodel.core.options import DeploymentPins
from perfmodel.specs.units import parse_one_size, plural


@app.command()
@option_group(
    "pins",
    DEPLOYMENT_PINS,
    exclude=("weight_dtype", "kv_dtype"),
    after={
        "batch": ("gpu", "num_gpus", "tp", "pp"),
        "acceptance_rate": ("mode", "profile", "allow_cross_node_tp"),
    },
)
def recommend(
    *,
    pins: DeploymentPins,
    batch: BatchOneOpt = "1",
    prompt_len: PromptOneOpt = "32k",
    output_len: OutputOpt = "512",
    slo_ttft: Annotated[
        float | None, typer.Option("--slo-ttft", help="TTFT SLO in seconds.")
    ] = None,
    slo_tpot: Annotated[
        float | None, typer.Option("--slo-tpot", help="TPOT SLO in seconds.")
    ] = None,
    slo_e2e: Annotated[
        float | None,
        typer.Option("--slo-e2e", help="End-to-end request latency SLO in seconds."),
    ] = None,
    max_quality_drop: Annotated[
        float,
        typer.Option("--max-quality-drop", help="SpecPrefill: max LongBench points lost."),
    ] = 1.0,
    speculator: Annotated[
        str | None,
        typer.Option(
            "--speculator", help="SpecPrefill speculator (default: smaller same-family model)."
        ),
    ] = None,
    draft: Annotated[
        str | None,
        typer.Option("--draft", help="Speculative-decoding drafts to compare, e.g. 1b,self."),
    ] = None,
    acceptance_rate: Annotated[
        float | None,
        typer.Option(
            "--acceptance-rate",
            help="Per-token acceptance (default: published data, else an assumed 0.8, labeled).",
        ),
    ] = None,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """Find the cheapest deployment serving the batch and meeting every SLO given (GPU type,
    nodes, TP x PP x DP, precision), then recommend SpecPrefill and speculative-decoding
    settings for it. No deployment meets the SLOs: exit 2 naming the nearest and its miss."""
    from perfmodel.planners.deployment_search import NoFeasibleDeployment
    from perfmodel.planners.recommend import recommend as plan
    from perfmodel.specs.models import resolve_model

    for note in resolve_model(pins.model).notices:  # e.g. an unknown model_type as a family
        warn(note)
    b = parse_one_size(batch, "--batch", "recommend")
    slo_given = any(v is not None for v in (slo_ttft, slo_tpot, slo_e2e))
    prompt = parse_one_size(prompt_len, "--prompt-len", "recommend")
    output = parse_one_size(output_len, "--output-len", "recommend")
    try:
        # --gpu pins the type; without it, h100 with alternatives, or (SLOs given) the
        # cheapest type that meets them
        rec = plan(
            pins if pins.gpu is not None or slo_given else replace(pins, gpu="h100"),
            b,
            prompt,
            output,
            slo_ttft,
            slo_tpot,
            max_quality_drop,
            speculator,
            draft,
            acceptance_rate,
            alternatives=[] if pins.gpu is not None else None,
            slo_e2e_s=slo_e2e,
            beyond_context=beyond_context,
        )
    except NoFeasibleDeployment as exc:
        if json and exc.nearest is not None:
            emit_json({"feasible": False, "error": str(exc), "nearest": exc.nearest.as_dict()})
        raise
    payload = rec.as_dict()
    if json:
        emit_json(payload)
    else:
        print(payload["headline"])
        _print_human(payload)
    for label in rec.labels:
        warn(label)
    if rec.deployment.weight_dtype == "int4":
        warn("only int4 weights serve this batch on up to 64 GPUs: expect a quality loss")


def _ep(d: dict) -> str:
    """' x EP8' for an expert-parallel deployment, '' otherwise."""
    return f" x EP{d['ep']}" if d.get("ep", 1) > 1 else ""


def _print_human(r: dict) -> None:
    """The recommendation as a two-column grid in a panel. Cells are rich Text built with
    their styles (Text.assemble), not markup strings: rich then skips its markup parser and
    emoji table for each of the ~6 times it measures or renders a cell, and a value is
    printed as given (a "[" or ":name:" in a model or GPU name stays literal)."""
    from rich.panel import Panel
    from rich.text import Text

    from perfmodel.cli.commands.common import fmt_time
    from perfmodel.cli.table import Table

    p, base, sp, sd, mem = (
        r["precision"],
        r["baseline"],
        r["specprefill"],
        r["specdecode"],
        r["memory"],
    )
    d = r["deployment"]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", justify="right")
    t.add_column()

    def row(label: str | tuple[str, str], *value: str | tuple[str, str]) -> None:
        """A row; a (text, style) part is styled, e.g. ("use", "green")."""
        t.add_row(Text.assemble(label), Text.assemble(*value))

    yellow = "yellow"
    row(
        "deployment",
        f"{d['num_gpus']}x {d['gpu']} on {plural(d['nodes'], 'node')} of "
        f"{d['gpus_per_node']}: TP{d['tp']}{_ep(d)} x PP{d['pp']} x DP{d['dp']}, "
        f"{plural(d['batch_per_replica'], 'sequence')} per replica, "
        f"{d['memory_per_gpu_gb']:.1f} of "
        f"{d['capacity_gb']:.1f} GB per GPU; ${d['cost_per_hour']:.2f}/h, "
        f"${d['cost_per_mtok']:.2f}/M output tokens",
    )
    for a in r["alternatives"]:
        row(
            "alternative",
            f"{a['num_gpus']}x {a['gpu']} (TP{a['tp']}{_ep(a)} x PP{a['pp']} x DP{a['dp']}), "
            f"{a['weight_dtype']}/{a['kv_dtype']}: ${a['cost_per_hour']:.2f}/h, "
            f"${a['cost_per_mtok']:.2f}/M output tokens",
        )
    for why in r["skipped"]:
        row(("no deployment", yellow), why)
    row("precision", f"{p['weight_dtype']} weights, {p['kv_dtype']} KV — {p['reason']}")
    if p["max_batch_on"]:
        row(
            f"on {p['max_batch_on']}",
            "largest batch: " + ", ".join(f"{k} {v}" for k, v in p["max_batch"].items()),
        )
    row(
        "baseline",
        f"TTFT {fmt_time(base['ttft_s'])}, TPOT {fmt_time(base['tpot_s'])}, e2e "
        f"{fmt_time(base['e2e_s'])}, {base['throughput_tok_s']:.0f} tok/s",
    )
    row(
        "memory/GPU",
        f"{mem['total_gb']:.1f} of {mem['capacity_gb']:.1f} GB (weights {mem['weights_gb']:.1f}, "
        f"KV {mem['kv_cache_gb']:.1f}, activations {mem['activation_gb']:.1f})",
    )
    if sp.get("available") and sp["pays"]:
        row(
            "SpecPrefill",
            ("use", "green"),
            f": speculator {sp['speculator']}, keep {sp['keep_rate']:g}, TTFT "
            f"{fmt_time(sp['baseline_ttft_s'])} -> {fmt_time(sp['specprefill_ttft_s'])} "
            f"({sp['speedup']:.2f}x), quality drop {sp['quality_drop']:.2f} of "
            f"{plural(float(sp['max_quality_drop']), 'LongBench point')} allowed",
        )
    elif sp.get("available"):
        row("SpecPrefill", (sp["reason"], yellow), f" (speculator {sp['speculator']})")
    else:
        row("SpecPrefill", ("unavailable", yellow), f": {sp['reason']}")
    if sd.get("available"):
        row(
            "spec. decoding",
            ("use", "green") if sd["pays"] else ("skip", yellow),
            f": draft {sd['draft']} on {sd['draft_runs_on']}, KV {sd['draft_kv']}, gamma "
            f"{sd['gamma']}, TPOT {fmt_time(sd['baseline_tpot_s'])} -> "
            f"{fmt_time(sd['sd_tpot_s'])} ({sd['speedup']:.2f}x)",
        )
        row(
            "acceptance",
            f"{sd['acceptance_rate']:.3f} per token ({sd['acceptance_basis']}) — "
            f"{sd['acceptance_source']}",
        )
    else:
        row("spec. decoding", ("unavailable", yellow), f": {sd['reason']}")
    crit_text = r["critical_seq_len_text"]
    if r["critical_seq_len"] is not None:
        crit_text += (
            f" at batch {r['batch_per_replica']}; workload context {r['workload_context']:.0f} is "
            f"{'above' if r['above_critical'] else 'below'} it"
        )
    elif r["pays_at_every_context"] or r["above_critical"] is not None:
        crit_text += f" at batch {r['batch']}"
    if sd.get("available"):
        crit_text += f" (acceptance {sd['acceptance_basis']})"
    row("critical length", crit_text)
    if r["binding"]:
        row("binding", r["binding"]["reason"])
    for note in r["notes"]:
        row("note", note)
    for label in r["labels"]:
        row(("label", yellow), label)
    row("why", r["rationale"])
    title = (
        f"recommend: {r['model']}, batch {r['batch']} ({r['batch_per_replica']} per replica), "
        f"{r['prompt_len']}+{r['output_len']} tokens"
    )
    console().print(Panel(t, title=Text(title), subtitle=Text(r["basis"]), expand=False))
