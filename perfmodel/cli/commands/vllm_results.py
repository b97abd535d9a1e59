"""`validate` and `calibrate` on vLLM's own benchmark JSON (vllm bench serve / latency):
parse the options, call accuracy.vllm_setup / vllm_replay, render. No model logic here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from perfmodel.cli.typer_app import console, emit_json, progress, warn
from perfmodel.core.bench_options import BenchOptions
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural

START_FLOOR_US = 1.0  # calibrate: where an overhead fitted from 0 starts (see calibrate_files)


def is_vllm_json(path: Path | None) -> bool:
    """A .json file or a folder: vLLM benchmark results (CSV stays the measurement table)."""
    return path is not None and (path.suffix.lower() == ".json" or path.is_dir())


def refuse_bench_options(options: BenchOptions) -> None:
    """The vLLM-file options given without a vLLM benchmark file: one line naming them."""
    given = options.names_given()
    if given:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in given)
        raise PerfModelError(
            f"{names}: only with --measurements FILE.json (a vLLM benchmark result)"
        )


def _cases(path: Path, options: BenchOptions):
    from perfmodel.accuracy.vllm_setup import bench_case, bench_files

    if options.shape is not None and None in options.shape:
        raise PerfModelError("--batch, --prompt-len and --output-len go together")
    files = bench_files(path)
    if not path.is_dir():
        return [bench_case(files[0], options)]
    cases = []
    for f in files:
        try:
            cases.append(bench_case(f, options))
        except PerfModelError as exc:  # say which folder the failing file came from
            raise PerfModelError(f"in directory {path} (vLLM results): {exc}") from None
    return cases


def _errors(replays) -> dict:
    """MAPE per compared quantity over the files (fractions)."""
    by: dict[str, list[float]] = {}
    for rep in replays:
        for row in rep.rows():
            by.setdefault(row["quantity"], []).append(abs(row["error"]))
    return {q: {"files": len(v), "mape": float(np.mean(v))} for q, v in by.items()}


def validate_files(path: Path, options: BenchOptions, json: bool) -> None:
    cases = _cases(path, options)
    with progress("replaying", len(cases)) as advance:
        replays = []
        for case in cases:
            replays.append(case.replay())
            advance()
    mape = _errors(replays)
    if json:
        emit_json({"vllm_results": [r.as_dict() for r in replays], "mape": mape})
        return
    from perfmodel.cli.table import Table

    out = console()
    for case, rep in zip(cases, replays, strict=True):
        t = Table(
            title=f"{Path(rep.path).name} ({case.result.__class__.__name__.removesuffix('Result').lower()}"
            f"{', ' + case.result.writer if hasattr(case.result, 'writer') else ''})",
            caption=f"{rep.deployment}; engine: "
            f"max_num_seqs {rep.setup.max_num_seqs}, max_num_batched_tokens "
            f"{rep.setup.max_num_batched_tokens} ({rep.setup.source}); {rep.requests} requests, "
            f"{rep.lengths}; arrivals {rep.arrivals}",
        )
        for col in ("quantity", "measured", "predicted", "error"):
            t.add_column(col, justify="left" if col == "quantity" else "right")
        for row in rep.rows():
            t.add_row(row["what"], f"{row['measured']:.4g}", f"{row['predicted']:.4g}",
                      f"{row['error']:+.1%}")  # fmt: skip
        out.print(t)
        for note in rep.notes:
            out.print(f"  note: {note}", highlight=False)
    if len(replays) > 1:
        out.print("MAPE over the files: " + ", ".join(
            f"{q} {v['mape']:.1%} ({v['files']})" for q, v in mape.items()
        ), highlight=False)  # fmt: skip


def calibrate_files(
    path: Path, options: BenchOptions, base, name, params: list[str] | None, out, json
) -> None:
    """Fit the overheads a serving replay identifies (vllm_setup.CALIBRATE_PARAMETERS, or
    --params); every other parameter stays at the starting profile's value, and is listed."""
    from perfmodel.accuracy.calibrate import fit_profile, provenance, save_fitted
    from perfmodel.accuracy.vllm_setup import identified_parameters, observations
    from perfmodel.specs.profile import PARAMETERS, load_profile

    cases = _cases(path, replace(options, profile=base))
    profiles = {c.dep.profile.name for c in cases}
    if len(profiles) > 1:
        raise PerfModelError(
            f"{path}: the files resolve to several profiles ({', '.join(sorted(profiles))}); "
            "calibrate one deployment at a time or give --base"
        )
    start = cases[0].dep.profile if base is None else load_profile(base)
    default, why_not = identified_parameters(cases)
    chosen = list(params or default)
    if why_not and not params:
        warn(f"not fitted, left at the prior: {why_not}")
    obs = observations(cases, tuple(chosen))
    if not obs:
        raise PerfModelError(f"{path}: no measured quantity to fit on")
    label = name or f"calibrated-{path.stem}"
    # an overhead starting at exactly 0 sits on its bound, where least_squares' trust region
    # starts at zero size and never moves: start such overheads at START_FLOOR_US instead
    floor = {p: START_FLOOR_US for p in chosen if p.startswith("overhead.") and start.get(p) <= 0}
    with progress("calibrating (replays)") as advance:
        result = fit_profile(
            obs, replace(start.with_values(**floor), note=""), chosen, name=label, progress=advance
        )
    kept = [p for p in PARAMETERS if p not in result.parameters]
    for p, why in result.unidentified.items():
        warn(f"the data cannot identify {p}: {why}; its value is the prior's, not a measurement")
    fitted = replace(
        result.profile,
        framework="vllm",  # what measured these files
        gpus=tuple(sorted({c.dep.gpu.name for c in cases})),
        unidentified=dict(result.unidentified),  # about this data only
        description=f"fitted by perfmodel calibrate from {start.name} on vLLM benchmark results",
        provenance=provenance(result, [str(c.result.path) for c in cases])
        | {"left_at_prior": kept},
    )
    saved = save_fitted(fitted, result, start, out)
    if json:
        emit_json(saved.as_dict() | {"left_at_prior": kept})
        return
    c = console()
    c.print(f"Fitted on {plural(len(cases), 'vLLM result file')}, "
            f"{plural(result.points, 'point')} "
            f"({', '.join(sorted({o.quantity for o in obs}))}); start: {start.name}",
            highlight=False)  # fmt: skip
    for p, v in saved.values.items():
        c.print(f"  {p} = {v:.4g} (std. error {result.stderr.get(p, float('nan')):.2g})",
                highlight=False)  # fmt: skip
    c.print(f"MAPE {result.mape:.2%}, RMSE (relative) {result.rmse:.2%}", highlight=False)
    c.print("left at the prior (serving summaries do not identify them): " + ", ".join(kept),
            highlight=False)  # fmt: skip
    if out is not None:
        c.print(f"profile written to {out}; use it with --profile {out}", highlight=False)
