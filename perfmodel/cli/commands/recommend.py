"""`perfmodel recommend`: precision, SpecPrefill and MagicDec settings for one workload."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.typer_app import (
    BatchOneOpt,
    GpuOpt,
    JsonOpt,
    ModelOpt,
    ModeOpt,
    NumGpusOpt,
    OutputOpt,
    ProfileOpt,
    PromptOneOpt,
    TpOpt,
    app,
    console,
    emit_json,
    warn,
)
from perfmodel.specs.units import parse_one_size


@app.command()
def recommend(
    model: ModelOpt = "70b",
    batch: BatchOneOpt = "1",
    gpu: GpuOpt = "h100",
    num_gpus: NumGpusOpt = 8,
    tp: TpOpt = None,
    prompt_len: PromptOneOpt = "32k",
    output_len: OutputOpt = "512",
    slo_ttft: Annotated[
        float | None, typer.Option("--slo-ttft", help="TTFT SLO in seconds.")
    ] = None,
    slo_tpot: Annotated[
        float | None, typer.Option("--slo-tpot", help="TPOT SLO in seconds.")
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
    mode: ModeOpt = None,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
) -> None:
    """Recommend precision, SpecPrefill keep rate and speculative-decoding settings."""
    from perfmodel.planners.recommend import recommend as plan

    b = parse_one_size(batch, "--batch", "recommend")
    rec = plan(
        model,
        b,
        gpu,
        num_gpus,
        tp,
        parse_one_size(prompt_len, "--prompt-len", "recommend"),
        parse_one_size(output_len, "--output-len", "recommend"),
        slo_ttft,
        slo_tpot,
        max_quality_drop,
        speculator,
        draft,
        acceptance_rate,
        profile,
        mode,
    )
    payload = rec.as_dict()
    if json:
        emit_json(payload)
    else:
        _print_human(payload)
    if not rec.fits:
        warn(
            f"batch {rec.precision.requested_batch} does not fit at any precision; the plan is "
            f"for batch {rec.precision.batch}"
        )


def _print_human(r: dict) -> None:
    from rich.panel import Panel
    from rich.table import Table

    from perfmodel.cli.commands.common import fmt_time

    p, base, sp, sd, mem = (
        r["precision"],
        r["baseline"],
        r["specprefill"],
        r["specdecode"],
        r["memory"],
    )
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", justify="right")
    t.add_column()
    if not p["fits"]:
        t.add_row(
            "[red]does not fit[/red]",
            f"[red]batch {p['requested_batch']}: plan below is for batch {p['batch']}[/red]",
        )
    t.add_row("precision", f"{p['weight_dtype']} weights, {p['kv_dtype']} KV — {p['reason']}")
    t.add_row(
        "baseline",
        f"TTFT {fmt_time(base['ttft_s'])}, TPOT {fmt_time(base['tpot_s'])}, e2e "
        f"{fmt_time(base['e2e_s'])}, {base['throughput_tok_s']:.0f} tok/s",
    )
    t.add_row(
        "memory/GPU",
        f"{mem['total_gb']:.1f} of {mem['capacity_gb']:.1f} GB (weights {mem['weights_gb']:.1f}, "
        f"KV {mem['kv_cache_gb']:.1f}, activations {mem['activation_gb']:.1f})",
    )
    if sp.get("available"):
        keep = "-" if sp["keep_rate"] is None else f"{sp['keep_rate']:g}"
        t.add_row(
            "SpecPrefill",
            f"{'[green]use[/green]' if sp['pays'] else '[yellow]skip[/yellow]'}: speculator "
            f"{sp['speculator']}, keep {keep}, TTFT {fmt_time(sp['baseline_ttft_s'])} -> "
            f"{fmt_time(sp.get('specprefill_ttft_s', sp['ttft_s']))} "
            f"({sp['speedup']:.2f}x) — {sp['reason']}",
        )
    else:
        t.add_row("SpecPrefill", f"[yellow]unavailable[/yellow]: {sp['reason']}")
    if sd.get("available"):
        t.add_row(
            "spec. decoding",
            f"{'[green]use[/green]' if sd['pays'] else '[yellow]skip[/yellow]'}: draft "
            f"{sd['draft']}, KV {sd['draft_kv']}, gamma {sd['gamma']}, TPOT "
            f"{fmt_time(sd['baseline_tpot_s'])} -> {fmt_time(sd['sd_tpot_s'])} "
            f"({sd['speedup']:.2f}x)",
        )
        t.add_row(
            "acceptance",
            f"{sd['acceptance_rate']:.3f} per token ({sd['acceptance_basis']}) — "
            f"{sd['acceptance_source']}",
        )
    else:
        t.add_row("spec. decoding", f"[yellow]unavailable[/yellow]: {sd['reason']}")
    crit = r["critical_seq_len"]
    if crit is None:
        crit_text = "none up to the context window (speculation never beats plain decoding)"
    elif crit <= 1:
        crit_text = "pays at every context at this batch"
    else:
        crit_text = (
            f"{crit:.0f} tokens at batch {r['batch']}; workload context {r['workload_context']:.0f} "
            f"is {'above' if r['above_critical'] else 'below'} it"
        )
    if sd.get("available"):
        crit_text += f" (acceptance {sd['acceptance_basis']})"
    t.add_row("critical length", crit_text)
    for note in r["notes"]:
        if not note.startswith("PLAN AT BATCH"):  # already in the precision row
            t.add_row("note", note)
    t.add_row("why", r["rationale"])
    title = (
        f"recommend: {r['model']} on {r['num_gpus']}x {r['gpu']} (TP{r['tp']}), batch "
        f"{r['batch']}, {r['prompt_len']}+{r['output_len']} tokens"
    )
    console().print(Panel(t, title=title, subtitle=r["basis"], expand=False))
