"""`perfmodel calibrate`: fit a profile to measurements (CSV or vLLM benchmark JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perfmodel.cli.bench_group import BENCH
from perfmodel.cli.commands.validate import MeasurementsOpt, TablesOpt, _tables
from perfmodel.cli.commands.vllm_results import calibrate_files, is_vllm_json, refuse_bench_options
from perfmodel.cli.option_groups import option_group
from perfmodel.cli.typer_app import JsonOpt, ModeOpt, app, console, emit_json, progress, warn
from perfmodel.core.bench_options import BenchOptions
from perfmodel.core.deployment import MODES
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import choice, parse_name_list, plural


@app.command()
@option_group("bench", BENCH, exclude=("profile",))
def calibrate(
    *,
    measurements: MeasurementsOpt = None,
    table: TablesOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the fitted profile YAML.")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Starting profile (default: the one for the rows' GPU)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the fitted profile.")] = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params",
            help="Parameters to fit, e.g. efficiency.matmul,overhead.per_step_us (default: those the data can see).",
        ),
    ] = None,
    mode: ModeOpt = None,
    json: JsonOpt = False,
    bench: BenchOptions,
) -> None:
    """Fit an efficiency profile to measurements (least squares on relative error); on vLLM
    benchmark JSON, fit the per-step and per-token overheads its replay identifies."""
    from dataclasses import replace

    from perfmodel.accuracy.calibrate import (
        fit_profile,
        framework_of,
        known_parameters,
        provenance,
        save_fitted,
    )
    from perfmodel.planners.feasibility.outputs import check_output_path
    from perfmodel.specs.hardware import resolve_gpu
    from perfmodel.specs.profile import load_profile, profile_for

    if measurements is None and table is None:
        raise PerfModelError("give --measurements CSV or --table NAME(S) to fit on")
    if out is not None:  # before any work: a writable regular file, YAML, not the input
        check_output_path(out, "--out", (".yaml", ".yml"), {"--measurements": measurements})
    mode = None if mode is None else choice(mode, MODES, "--mode")  # checks before the work
    chosen = None
    if params:
        chosen = known_parameters(parse_name_list(params, "--params"))
    if base:
        load_profile(base)
    if is_vllm_json(measurements):
        if table or mode:
            raise PerfModelError("--table and --mode do not apply to a vLLM benchmark JSON")
        calibrate_files(measurements, bench, base, name, chosen, out, json)
        return
    refuse_bench_options(bench)
    tables = _tables(table, measurements, None)
    observations = [o for t in tables if t.fit or measurements is not None for o in t.observations]
    if not observations:
        raise PerfModelError("no fittable measured rows in the given data")
    gpu = observations[0].gpu or "h100-sxm"
    start = (
        load_profile(base)
        if base
        else (
            load_profile(observations[0].profile)
            if observations[0].profile and measurements is None
            else profile_for(gpu)
        )
    )
    if mode is not None:
        start = replace(start, mode=mode)
    label = name or (
        f"calibrated-{measurements.stem}" if measurements else f"calibrated-{start.name}"
    )
    with progress("calibrating (model evaluations)") as advance:
        result = fit_profile(
            observations, replace(start, note=""), chosen, name=label, progress=advance
        )
    for p, why in result.unidentified.items():
        warn(f"the data cannot identify {p}: {why}, not a measurement")
    fitted = replace(
        result.profile,
        framework=framework_of(tables, start.framework),
        # canonical names (a row's 'h100' is h100-sxm): the start's operator table checks them
        gpus=tuple(sorted({resolve_gpu(o.gpu).name for o in observations if o.gpu})) or start.gpus,
        description=f"fitted by perfmodel calibrate from {start.name}",
        provenance=provenance(result, [t.path for t in tables]),
        unidentified=dict(result.unidentified),  # about this data only, not the start's notes
    )
    saved = save_fitted(fitted, result, start, out)
    if json:
        dropped = [n for t in tables for n in t.notes]
        emit_json(saved.as_dict() | {"framework": fitted.framework, "dropped": dropped})
        return
    from perfmodel.cli.table import Table

    t = Table(title=f"Fitted profile '{fitted.name}' (start: {start.name}, {fitted.mode} mode)")
    for col in ("parameter", "value", "std. error"):
        t.add_column(col)
    for p, v in saved.values.items():
        t.add_row(p, f"{v:.4g}", f"{result.stderr.get(p, float('nan')):.2g}")
    c = console()
    c.print(t)
    c.print(
        f"{plural(result.points, 'point')}, MAPE {result.mape:.2%}, "
        f"RMSE (relative) {result.rmse:.2%}"
    )
    if out is not None:
        c.print(f"profile written to {out}; use it with --profile {out}")
