"""`perfmodel capacity`: cheapest fleet per GPU type meeting TTFT/TPOT SLOs at a QPS."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.option_groups import DEPLOYMENT_PINS, option_group
from perfmodel.cli.typer_app import (
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
from perfmodel.errors import PerfModelError
from perfmodel.planners.slo import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S
from perfmodel.specs.units import plural


@app.command()
@option_group(
    "pins",
    DEPLOYMENT_PINS,
    exclude=("gpu", "num_gpus", "tp", "pp", "allow_cross_node_tp"),
    after={"report": ("weight_dtype", "kv_dtype"), "utilization": ("mode", "profile")},
)
def capacity(
    *,
    pins: DeploymentPins,
    qps: Annotated[
        float | None,
        typer.Option("--qps", help="Requests per second (default: from --workload)."),
    ] = None,
    prompt_len: PromptOneOpt = "4k",
    output_len: OutputOpt = "512",
    slo_ttft: Annotated[
        float, typer.Option("--slo-ttft", help="TTFT SLO (s, p90).")
    ] = DEFAULT_SLO_TTFT_S,
    slo_tpot: Annotated[
        float, typer.Option("--slo-tpot", help="TPOT SLO (s).")
    ] = DEFAULT_SLO_TPOT_S,
    gpus: Annotated[
        str, typer.Option("--gpus", help="GPU types to compare, e.g. h100,h200,a100.")
    ] = "h100,h200,a100",
    prices: Annotated[
        str | None, typer.Option("--prices", help="USD per GPU-hour, e.g. h100=3.0,a100=1.8.")
    ] = None,
    with_spec: Annotated[
        bool, typer.Option("--with-spec", help="Also size fleets with SpecPrefill and MagicDec.")
    ] = False,
    workload: Annotated[
        str | None,
        typer.Option("--workload", help="CSV/JSONL with prompt_len, output_len, arrival_time."),
    ] = None,
    report: Annotated[
        str | None, typer.Option("--report", help="Write out.html or out.md.")
    ] = None,
    utilization: Annotated[
        float, typer.Option("--utilization", help="Target utilization per replica.")
    ] = 0.8,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """Size a fleet per GPU type under TTFT/TPOT SLOs; cost per hour and per token."""
    from perfmodel.cli.commands.common import check_context
    from perfmodel.planners.capacity.plan import plan_capacity
    from perfmodel.planners.capacity.workload import (
        check_qps,
        fixed_workload,
        load_workload,
        parse_prices,
    )
    from perfmodel.planners.feasibility.outputs import check_output_path
    from perfmodel.specs.models import resolve_model
    from perfmodel.specs.units import parse_name_list, parse_one_size

    if report is not None:  # before any work: a file, format from the extension, not the input
        check_output_path(report, "--report", (".html", ".htm", ".md"), {"--workload": workload})
    names = _distinct_gpus(parse_name_list(gpus, "--gpus", unique=False))
    price_map = parse_prices(prices)
    if qps is not None:
        check_qps(qps)
    if workload:
        wl = load_workload(workload, qps)
    else:
        if qps is None:
            raise PerfModelError("give --qps (or --workload with arrival times)")
        wl = fixed_workload(
            qps,
            parse_one_size(prompt_len, "--prompt-len", "capacity"),
            parse_one_size(output_len, "--output-len", "capacity"),
        )
    spec = resolve_model(pins.model)
    # the one context rule, on every request of the workload (the longest is named)
    prompts = wl.prompt_samples if wl.prompt_samples is not None else wl.prompt_p90
    outputs = wl.output_samples if wl.output_samples is not None else wl.output_p90
    labels = check_context(spec, prompts, outputs, beyond_context)
    for note in spec.notices:
        warn(note)
    plan = plan_capacity(
        pins, wl, slo_ttft, slo_tpot, names, price_map, with_spec, util=utilization
    )
    payload = plan.as_dict()
    payload["labels"] = labels
    if report:
        from perfmodel.reports import write_report

        payload["report"] = write_report(report, payload, plan.curves, plan.critical)
    if plan.critical:
        payload["critical_length"] = plan.critical
    if json:
        emit_json(payload)
    else:
        _print_human(payload)
    for o in payload["options"]:
        sim = o.get("simulation")
        if sim and not sim["meets_slo"]:
            warn(
                f"{o['gpu']}{' + spec' if o['with_spec'] else ''}: the simulation check misses "
                f"the SLOs (TTFT p90 {sim['ttft_p90_s']:.3g} s, TPOT p90 "
                f"{sim['tpot_p90_s']:.3g} s); add a replica or lower the batch"
            )


def _distinct_gpus(names: list[str]) -> list[str]:
    """--gpus with aliases resolved; a GPU named twice is compared once, with a notice."""
    from perfmodel.specs.hardware import load_gpu

    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(load_gpu(name).name, []).append(name)
    for canonical, given in seen.items():
        if len(given) > 1:
            warn(f"--gpus: {', '.join(given)} name the same GPU ({canonical}); compared once")
    return list(seen)


def _print_human(p: dict) -> None:
    from perfmodel.cli.table import Table
    from perfmodel.reports import OPTION_COLUMNS, option_rows

    out = console()
    wl = p["workload"]
    t = Table(
        title=f"capacity: {p['model']} at {wl['qps']:.3g} QPS, prompt {wl['prompt_len_p90']:.0f} "
        f"(p90), output {wl['output_len_p90']:.0f} (p90), SLO TTFT {p['slo']['ttft_s']:g} s / "
        f"TPOT {p['slo']['tpot_s']:g} s",
        caption=p["basis"],
    )
    for _, h in OPTION_COLUMNS:
        t.add_column(h, justify="right")
    for row in option_rows(p):
        t.add_row(*row)
    out.print(t)
    if p["best"]:
        b = p["best"]
        out.print(
            f"[bold]cheapest:[/bold] {b['gpus_needed']}x {b['gpu']} on "
            f"{plural(b['nodes'], 'node')} ({plural(b['replicas'], 'replica')} of TP{b['tp']}"
            f"{' x PP' + str(b['pp']) if b['pp'] > 1 else ''}, "
            f"{b['weight_dtype']}/{b['kv_dtype']}, batch {b['batch']}"
            f"{', with speculation' if b['with_spec'] else ''}): ${b['cost_per_hour']:.2f}/h, "
            f"${b['cost_per_mtok']:.2f} per million output tokens; binding: "
            f"{b['binding_constraint']}"
        )
    out.print(f"[bold]why:[/bold] {p['why']}", highlight=False)
    out.print("[bold]assumptions[/bold]")
    for a in p["assumptions"]:
        out.print(f"- {a}", highlight=False)
    if p.get("report"):
        out.print(f"report written: {p['report']}")
