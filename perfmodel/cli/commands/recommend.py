"""`perfmodel recommend`: precision, SpecPrefill and MagicDec settings for one workload."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.typer_app import (
    BatchOpt,
    GpuOpt,
    JsonOpt,
    ModelOpt,
    ModeOpt,
    NumGpusOpt,
    OutputOpt,
    ProfileOpt,
    PromptOpt,
    TpOpt,
    app,
    console,
    emit_json,
    warn,
)
from perfmodel.specs.units import parse_size


@app.command()
def recommend(
    model: ModelOpt = "70b",
    batch: BatchOpt = "1",
    gpu: GpuOpt = "h100",
    num_gpus: NumGpusOpt = 8,
    tp: TpOpt = None,
    prompt_len: PromptOpt = "32k",
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

    b = parse_size(batch, "--batch")
    rec = plan(
        model,
        b,
        gpu,
        num_gpus,
        tp,
        parse_size(prompt_len, "--prompt-len"),
        parse_size(output_len, "--output-len"),
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
    if sp.get("available") and sp["pays"]:
        t.add_row(
            "SpecPrefill",
            f"[green]use[/green]: speculator {sp['speculator']}, keep {sp['keep_rate']:g}, TTFT "
            f"{fmt_time(sp['baseline_ttft_s'])} -> {fmt_time(sp['specprefill_ttft_s'])} "
            f"({sp['speedup']:.2f}x), quality drop {sp['quality_drop']:.2f} of "
            f"{sp['max_quality_drop']:g} LongBench points allowed",
        )
    elif sp.get("available"):
        t.add_row("SpecPrefill", f"[yellow]{sp['reason']}[/yellow] (speculator {sp['speculator']})")
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
    crit_text = r["critical_seq_len_text"]
    if r["critical_seq_len"] is not None:
        crit_text += (
            f" at batch {r['batch']}; workload context {r['workload_context']:.0f} is "
            f"{'above' if r['above_critical'] else 'below'} it"
        )
    elif r["pays_at_every_context"] or r["above_critical"] is not None:
        crit_text += f" at batch {r['batch']}"
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
