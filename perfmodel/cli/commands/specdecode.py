"""`perfmodel specdecode`, `critical-length`, `min-acceptance`: the MagicDec planner.

All three share the deployment options, the draft choice (--draft 1b|self|1b,self), its KV
cache (--draft-kv full|streamingllm:B|snapkv:B, lists; a method without :B tries every
budget in --budgets) and the acceptance (--acceptance-rate | --acceptance-len, else the
published acceptance data). Omitting --gamma optimizes it over 1..8.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from perfmodel.cli.commands.common import check_context, deployment_of
from perfmodel.cli.option_groups import DEPLOYMENT, DTYPES_MODE_PROFILE, OptionGroup, option_group
from perfmodel.cli.typer_app import (
    BatchOneOpt,
    BatchOpt,
    BeyondContextOpt,
    JsonOpt,
    app,
    console,
    emit_json,
    warn,
)
from perfmodel.core.deployment import basis_label as basis
from perfmodel.core.options import DeploymentOptions
from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility import deployment_topology
from perfmodel.planners.specdecode_setup import SpeculationOptions, resolve_speculation
from perfmodel.specs.units import parse_size_list

DraftOpt = Annotated[
    str, typer.Option("--draft", help="Draft model(s): 1b, self (self-speculation), or 1b,self.")
]
DraftKvOpt = Annotated[
    str,
    typer.Option(
        "--draft-kv",
        help="Draft KV cache: full | streamingllm:B | snapkv:B, or a list; no :B = try --budgets.",
    ),
]
BudgetsOpt = Annotated[
    str,
    typer.Option("--budgets", help="KV budgets tried for a method given without :B."),
]
GammaOpt = Annotated[
    int | None, typer.Option("--gamma", "-g", help="Draft tokens per round (omit: optimize 1..8).")
]
RateOpt = Annotated[
    float | None,
    typer.Option("--acceptance-rate", "-a", help="Per-token acceptance rate a in [0, 1)."),
]
LenOpt = Annotated[
    float | None,
    typer.Option("--acceptance-len", "-e", help="Mean tokens per round E in [1, gamma+1)."),
]
PromptOpt = Annotated[str, typer.Option("--prompt-len", "-p", help="Context length(s), e.g. 8k.")]
PromptOneOpt = Annotated[
    str, typer.Option("--prompt-len", "-p", help="Context length (one value), e.g. 8k.")
]
SPECULATION = OptionGroup(
    SpeculationOptions,
    {
        "draft": DraftOpt,
        "draft_kv": DraftKvOpt,
        "budgets": BudgetsOpt,
        "gamma": GammaOpt,
        "acceptance_rate": RateOpt,
        "acceptance_len": LenOpt,
    },
)


# after the dtypes, mode and profile: TP across nodes only when asked for (issue 20)
LAST = (*DTYPES_MODE_PROFILE, "allow_cross_node_tp")


def _setup(target: DeploymentOptions, choices: SpeculationOptions):
    """The deployment and the resolved speculation choices, checked before any work."""
    dep = deployment_of(target)
    setup = resolve_speculation(dep, choices)
    for notice in setup.notices:
        warn(notice)
    return dep, setup.configs, setup.gammas, setup.policy


def _meta(dep, configs, gammas) -> dict:
    return {
        "model": dep.model.name,
        "gpu": dep.gpu.name,
        "num_gpus": dep.num_gpus,
        "tp": dep.tp,
        "weight_dtype": dep.weight_dtype,
        "kv_dtype": dep.kv_dtype,
        "profile": dep.profile.name,
        "mode": dep.mode,
        "basis": basis(dep),
        "drafts_considered": [c.label for c in configs],
        "gammas_considered": [int(g) for g in gammas],
        "labels": list(deployment_topology(dep).labels),
    }


@app.command()
@option_group("target", DEPLOYMENT, exclude=("pp", "ep"), last=LAST)
@option_group("choices", SPECULATION)
def specdecode(
    *,
    target: DeploymentOptions,
    batch: BatchOpt = "1",
    prompt_len: PromptOpt = "8k",
    choices: SpeculationOptions,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """Speculative decoding (MagicDec): draft, verify and per-token times, speedup, memory;
    optimizes gamma, KV budget and draft when several are possible."""
    from perfmodel.planners import specdecode as sd

    dep, configs, gammas, rate = _setup(target, choices)
    b = np.array(parse_size_list(batch, "--batch"), float)
    p = np.array(parse_size_list(prompt_len, "--prompt-len"), float)
    bb, pp = (x.ravel() for x in np.meshgrid(b, p, indexing="ij"))
    labels = check_context(dep.model, pp, 0, beyond_context)
    grid = sd.evaluate_grid(dep, configs, bb, pp, gammas, rate)
    optimizing = len(configs) * gammas.size > 1
    rows, points = [], []
    for n in range(bb.size):
        fits_any = bool(grid.fits[:, n].any())
        ci, gi = grid.best_index(require_fit=fits_any)
        rec = grid.record(int(ci[n]), int(gi[n]), n)
        points.append(sd.NoFitPoint(rec["batch"], rec["prompt_len"], configs[ci[n]], fits_any))
        if optimizing:
            rec["best"] = {
                "draft": rec["draft"],
                "draft_kv": rec["draft_kv"],
                "gamma": rec["gamma"],
                "speedup": rec["speedup"],
                "top": grid.top(n, 5, require_fit=fits_any),
            }
        # recommended only where it beats plain decoding and fits (speedup <= 1: decode plain)
        rec["pays"] = sd.decode_pays(rec["speedup"], rec["fits"])
        rec["excluded_oom"] = [c.label for i, c in enumerate(configs) if not grid.fits[i, n]]
        rec["not_ranked_no_acceptance_data"] = [
            c.label for c, basis in zip(configs, grid.acceptance, strict=True) if not basis.ranked
        ]
        rows.append(rec)
    meta = _meta(dep, configs, gammas)
    meta["labels"] = labels + meta["labels"]
    for r in rows:
        if not r["fits"]:
            warn(
                f"batch {r['batch']}, context {r['prompt_len']}: no configuration fits in GPU "
                f"memory ({r['memory']['total_gb']:.1f} of {r['memory']['capacity_gb']:.1f} GB "
                "per GPU); showing the best one anyway"
            )
        elif r["excluded_oom"]:
            warn(
                f"batch {r['batch']}, context {r['prompt_len']}: excluded (out of memory): "
                + ", ".join(r["excluded_oom"])
            )
    if rows and rows[0]["not_ranked_no_acceptance_data"]:
        warn(
            "not ranked, no published acceptance data (pass --acceptance-rate to include them): "
            + ", ".join(rows[0]["not_ranked_no_acceptance_data"])
        )
    verdict = sd.no_fit_verdict(dep, points)
    if json:
        payload = {**rows[0], **meta}
        if len(rows) > 1:
            payload["rows"] = rows
        emit_json(payload)
        return
    _print_specdecode(dep, rows, meta, optimizing, verdict)


HYPOTHETICAL = "what speculative decoding would give with enough memory."


def _lead_verdict(verdict, hypothetical: str) -> None:
    """The first line of a MagicDec text answer whose setup does not fit (as predict leads
    with its verdict): planners.specdecode.no_fit_verdict's message, then which figures
    below are hypothetical. Nothing when it fits."""
    if not verdict.ok:
        console().print(
            f"[bold red]does not fit:[/bold red] {verdict.reasons[0].message} "
            f"{hypothetical} {HYPOTHETICAL}",
            highlight=False,
        )


def _verdict_field(verdict) -> str | None:
    """--json's does_not_fit: the verdict's message (the text after "does not fit:"), or
    null when every point has a draft configuration that fits."""
    return None if verdict.ok else verdict.reasons[0].message


def _print_specdecode(dep, rows, meta, optimizing, verdict) -> None:
    from perfmodel.cli.table import Table

    out = console()
    _lead_verdict(verdict, "Rows marked OOM are hypothetical:")
    out.print(f"[bold]MagicDec on {dep.describe()}[/bold]  ({meta['basis']})")
    table = Table(title="Speculative decoding, best configuration per point")
    cols = (
        "batch",
        "context",
        "draft",
        "draft KV",
        "gamma",
        "a",
        "E",
        "T_D",
        "T_V",
        "T_SD",
        "T_auto",
        "speedup",
        "mem/GPU",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("draft", "draft KV") else "right")
    for r in rows:
        m = r["memory"]
        table.add_row(
            str(r["batch"]),
            str(r["prompt_len"]),
            r["draft"],
            r["draft_kv"],
            str(r["gamma"]),
            f"{r['acceptance_rate']:.3f}",
            f"{r['acceptance_len']:.2f}",
            f"{r['t_draft_ms']:.2f} ms",
            f"{r['t_verify_ms']:.2f} ms",
            f"{r['t_sd_ms']:.2f} ms",
            f"{r['t_autoregressive_ms']:.2f} ms",
            f"{r['speedup']:.2f}x",
            f"{m['total_gb']:.1f}/{m['capacity_gb']:.1f} GB"
            + ("" if m["fits"] else " [red]OOM[/red]"),
        )
    out.print(table)
    if optimizing:
        top = Table(title="Top configurations (first point)")
        for col in ("draft", "draft KV", "gamma", "T_SD", "speedup", "fits"):
            top.add_column(col, justify="right")
        for r in rows[0]["best"]["top"]:
            top.add_row(
                r["draft"],
                r["draft_kv"],
                str(r["gamma"]),
                f"{r['t_sd_ms']:.2f} ms",
                f"{r['speedup']:.3f}x",
                "yes" if r["fits"] else "no",
            )
        out.print(top)
    out.print(f"acceptance ({rows[0]['acceptance_basis']}): {rows[0]['acceptance_source']}")
    for r in rows:
        if not r["pays"]:
            why = (
                "is no faster than plain decoding"
                if r["speedup"] <= 1.0
                else "does not fit in GPU memory beside the target"
            )
            out.print(
                f"batch {r['batch']}, context {r['prompt_len']}: not recommended, the best "
                f"configuration ({r['speedup']:.2f}x) {why}; decode without a draft",
                highlight=False,
            )


@app.command("critical-length")
@option_group("target", DEPLOYMENT, exclude=("pp", "ep"), last=LAST)
@option_group("choices", SPECULATION)
def critical_length_cmd(
    *,
    target: DeploymentOptions,
    batch: BatchOpt = "256",
    choices: SpeculationOptions,
    beyond_context: BeyondContextOpt = False,
    max_len: Annotated[
        str | None, typer.Option("--max-len", help="Search up to (default: context window).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Critical sequence length: the smallest context at which the best speculative
    configuration beats plain decoding (speedup > 1), per batch size."""
    from perfmodel.planners import specdecode as sd
    from perfmodel.planners.critical import from_raw_array

    dep, configs, gammas, rate = _setup(target, choices)
    b = np.array(parse_size_list(batch, "--batch"), float)
    top = parse_size_list(max_len, "--max-len")[0] if max_len else None
    limit = int(top or dep.model.max_position_embeddings)
    labels = check_context(dep.model, limit, 0, beyond_context)
    crit = sd.critical_length(dep, configs, b, gammas, rate, max_len=limit)
    curve, points = [], []
    for answer, li in zip(from_raw_array(crit, b, limit), crit, strict=True):
        entry = {"batch": answer.batch, **answer.as_dict()}
        if np.isfinite(li):  # the best configuration at the critical length (1: every context)
            grid = sd.evaluate_grid(dep, configs, [answer.batch], [li], gammas, rate)
            ci, gi = grid.best_index(require_fit=False)
            rec = grid.record(int(ci[0]), int(gi[0]), 0)
            fits_any = bool(grid.fits[:, 0].any())
            points.append(sd.NoFitPoint(answer.batch, int(li), configs[ci[0]], fits_any))
            entry.update(
                draft=rec["draft"],
                draft_kv=rec["draft_kv"],
                gamma=rec["gamma"],
                speedup=rec["speedup"],
                acceptance_rate=rec["acceptance_rate"],
                acceptance_source=rec["acceptance_source"],
                acceptance_basis=rec["acceptance_basis"],
                fits=rec["fits"],
            )
        curve.append(entry)
    meta = _meta(dep, configs, gammas)
    meta["max_len"] = limit
    meta["labels"] = labels + meta["labels"]
    meta["memory_note"] = "time model only: memory not required to fit (see 'fits')"
    payload = {**curve[0], **meta}
    if len(curve) > 1:
        payload["curve"] = curve
    verdict = sd.no_fit_verdict(dep, points)
    payload["does_not_fit"] = _verdict_field(verdict)
    if json:
        emit_json(payload)
        return
    from perfmodel.cli.table import Table

    out = console()
    _lead_verdict(verdict, "Rows with fits 'no' are hypothetical:")
    out.print(f"[bold]Critical sequence length, {dep.describe()}[/bold]  ({meta['basis']})")
    table = Table(title="Smallest context with best speedup > 1")
    for col in ("batch", "critical length", "draft", "draft KV", "gamma", "speedup", "fits"):
        table.add_column(col, justify="right")
    for e in curve:
        if "draft" not in e:
            table.add_row(str(e["batch"]), e["critical_seq_len_text"], "-", "-", "-", "-", "-")
        else:
            table.add_row(
                str(e["batch"]),
                e["critical_seq_len_text"],
                e["draft"],
                e["draft_kv"],
                str(e["gamma"]),
                f"{e['speedup']:.4f}x",
                "yes" if e["fits"] else "no",
            )
    out.print(table)
    if curve[0].get("acceptance_source"):
        out.print(f"acceptance ({curve[0]['acceptance_basis']}): {curve[0]['acceptance_source']}")


@app.command("min-acceptance")
@option_group("target", DEPLOYMENT, exclude=("pp", "ep"), last=LAST)
@option_group("choices", SPECULATION, exclude=("acceptance_rate", "acceptance_len"))
def min_acceptance_cmd(
    *,
    target: DeploymentOptions,
    batch: BatchOneOpt = "1",
    prompt_len: PromptOneOpt = "8k",
    choices: SpeculationOptions,
    beyond_context: BeyondContextOpt = False,
    json: JsonOpt = False,
) -> None:
    """Minimum per-token acceptance rate for speculative decoding to break even (speedup 1)."""
    from perfmodel.planners import specdecode as sd
    from perfmodel.planners.speculation.acceptance import expected_accepted

    dep, configs, gammas, _ = _setup(target, choices)
    b = parse_size_list(batch, "--batch")
    p = parse_size_list(prompt_len, "--prompt-len")
    if len(b) > 1 or len(p) > 1:
        raise PerfModelError("min-acceptance takes one --batch and one --prompt-len")
    labels = check_context(dep.model, p[0], 0, beyond_context)
    rows = sd.min_acceptance_rate(dep, configs, b[0], p[0], gammas)
    feasible = [r for r in rows if r["min_acceptance_rate"] is not None]
    best = min(feasible, key=lambda r: r["min_acceptance_rate"]) if feasible else None
    payload = {
        "batch": b[0],
        "prompt_len": p[0],
        "min_acceptance_rate": best["min_acceptance_rate"] if best else None,
        "min_acceptance_len": (
            float(expected_accepted(best["min_acceptance_rate"], best["gamma"])) if best else None
        ),
        "draft": best["draft"] if best else None,
        "draft_kv": best["draft_kv"] if best else None,
        "gamma": best["gamma"] if best else None,
        "by_config": rows,
        **_meta(dep, configs, gammas),
    }
    payload["labels"] = labels + payload["labels"]
    verdict = _min_acceptance_verdict(dep, configs, b[0], p[0], rows, best)
    payload["does_not_fit"] = _verdict_field(verdict)
    if json:
        emit_json(payload)
        return
    from perfmodel.cli.table import Table

    out = console()
    _lead_verdict(verdict, "Rows with fits 'no' are hypothetical:")
    out.print(f"[bold]Break-even acceptance, {dep.describe()}[/bold]  ({payload['basis']})")
    table = Table(title=f"Minimum acceptance rate for speedup 1 (batch {b[0]}, context {p[0]})")
    for col in ("draft", "draft KV", "gamma", "min a", "fits"):
        table.add_column(col, justify="right")
    for r in sorted(
        rows, key=lambda r: (r["min_acceptance_rate"] is None, r["min_acceptance_rate"] or 0)
    )[:10]:
        a = r["min_acceptance_rate"]
        table.add_row(
            r["draft"],
            r["draft_kv"],
            str(r["gamma"]),
            "unreachable" if a is None else f"{a:.4f}",
            "yes" if r["fits"] else "no",
        )
    out.print(table)
    if best is None:
        out.print("speculation cannot break even at this setting for any acceptance rate")


def _min_acceptance_verdict(dep, configs, batch, prompt_len, rows, best):
    """no_fit_verdict at min-acceptance's one point, with the figures of its answer's draft
    configuration, or, where it has none, of the configuration that needs the least memory."""
    from perfmodel.planners import specdecode as sd

    fits_any = any(r["fits"] for r in rows)
    if best is not None:
        config = next(
            c for c in configs if (c.draft, c.kv_label) == (best["draft"], best["draft_kv"])
        )
    else:
        need = [sd.draft_memory_verdict(dep, c, batch, prompt_len) for c in configs]
        config = configs[min(range(len(configs)), key=lambda i: _needed_gb(need[i]))]
    return sd.no_fit_verdict(dep, [sd.NoFitPoint(batch, prompt_len, config, fits_any)])


def _needed_gb(verdict) -> float:
    return verdict.reasons[0].value if not verdict.ok else 0.0
