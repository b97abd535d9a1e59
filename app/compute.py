"""The compute part of every page: calls into perfmodel, results as plain frames and dicts.

No formulas here: each function only calls perfmodel (the same functions the CLI uses) and
arranges the answers as pandas frames for plotting. The functions take plain, hashable
arguments (a settings dict from common.sidebar, numbers, strings, bytes), so pages wrap them
in st.cache_data, and benchmarks/bench_app.py times them without Streamlit.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from perfmodel.core.deployment import Deployment, basis_label
from perfmodel.core.options import DeploymentOptions, DeploymentPins
from perfmodel.errors import PerfModelError
from perfmodel.planners.pricing_memo import Memo

MAX_UPLOAD_BYTES = 2_000_000  # uploaded measurement CSVs are capped at 2 MB
# the capacity page's priced points, kept across interactions and sessions (keyed by value:
# perfmodel.planners.pricing_memo); bounded
PRICING = Memo(max_entries=20_000)


def deployment_options(
    cfg: dict, model: str | None = None, gpu: str | None = None
) -> DeploymentOptions:
    """The sidebar's widgets as perfmodel.core.options.DeploymentOptions, the one declaration
    of a deployment the CLI builds from its flags (one replica: TP = the GPUs per replica)."""
    n = int(cfg["num_gpus"])
    return DeploymentOptions(
        model=model or cfg["model"],
        gpu=gpu or cfg["gpu"],
        num_gpus=n,
        tp=n,
        weight_dtype=cfg["weight_dtype"],
        kv_dtype=cfg["kv_dtype"],
        mode=None if cfg.get("mode", "auto") == "auto" else cfg["mode"],
        profile=_profile_arg(cfg.get("profile", "auto")),
    )


def deployment_pins(cfg: dict) -> DeploymentPins:
    """The sidebar's replica as perfmodel.core.options.DeploymentPins for the planners that
    search the rest (recommend): model, GPU type, GPUs and TP per replica, mode and profile
    pinned; the pipeline stages and the precision searched."""
    o = deployment_options(cfg)
    return DeploymentPins(
        model=o.model, gpu=o.gpu, num_gpus=o.num_gpus, tp=o.tp, mode=o.mode, profile=o.profile
    )


def deployment(cfg: dict, model: str | None = None, gpu: str | None = None) -> Deployment:
    """The sidebar settings as a perfmodel Deployment (optionally another model or GPU)."""
    return deployment_options(cfg, model, gpu).deployment()


def basis_text(dep: Deployment) -> str:
    """'modeled: profile X, mode Y' exactly as the CLI prints it (core.deployment.basis_label)."""
    return basis_label(dep)


# --- page 5: model explorer ----------------------------------------------------------------
def explorer(cfg: dict, batch: int, prompt_len: int, output_len: int) -> dict:
    """Latency, memory and the per-operator breakdown of prefill and of one decode step.

    perfmodel.core.api.predict_arrays for the request, perfmodel.core.breakdown.breakdown_rows
    (inference.pass_breakdown) for the operators, the GPU spec for the roofline's ceilings.
    """
    from perfmodel.core.api import predict_arrays
    from perfmodel.core.breakdown import breakdown_rows
    from perfmodel.core.inference import mean_decode_context

    dep = deployment(cfg)
    cols = predict_arrays(dep, batch, prompt_len, output_len)
    summary = {k: float(np.ravel(v)[0]) for k, v in cols.items()}
    frames = []
    for phase, rows in (
        ("prefill", breakdown_rows(dep, batch, prompt_len, 0)),
        (
            "decode step",
            breakdown_rows(
                dep, batch, 1, float(np.ravel(mean_decode_context(prompt_len, output_len))[0])
            ),
        ),
    ):
        frame = pd.DataFrame(rows)
        frame.insert(0, "phase", phase)
        frames.append(frame)
    ops = pd.concat(frames, ignore_index=True)
    ops["achieved_flop_s"] = ops["flops"] / ops["time_s"].where(ops["time_s"] > 0)
    return {
        "summary": summary,
        "ops": ops,
        "peak_flop_s": dep.gpu.peak_flops(dep.compute_dtype),
        "hbm_bytes_s": dep.gpu.hbm_bandwidth,
        "gpu": dep.gpu.name,
        "compute_dtype": dep.compute_dtype,
        "describe": dep.describe(),
        "basis": basis_text(dep),
    }


# --- page 5: validation ----------------------------------------------------------------------
def _validation_view(result) -> dict:
    """validate_tables' result as the page shows it: score and point frames, OOM checks."""
    tables, points = [], []
    for s in result.scores:
        table, _, quantity = s.name.partition("/")
        tables.append(
            {
                "table": table,
                "quantity": quantity,
                "rows": s.rows,
                "mape": s.mape,
                "max_ape": s.max_ape,
                "profile": s.profile,
                "fitted_on": s.fit,
                "worst": s.worst,
            }
        )
        for label, m, p in zip(s.labels, s.measured, s.predicted, strict=True):
            points.append(
                {
                    "table": table,
                    "quantity": quantity,
                    "label": label,
                    "measured_s": float(m),
                    "predicted_s": float(p),
                    "ape": abs(float(p) - float(m)) / float(m),
                    "profile": s.profile,
                }
            )
    checks = [c.as_dict() for c in result.memory_checks]
    return {"tables": pd.DataFrame(tables), "points": pd.DataFrame(points), "memory_checks": checks}


@functools.lru_cache(maxsize=1)
def shipped_tables() -> tuple:
    """perfmodel.accuracy.observations.published_tables(), read once per process: the shipped
    tables do not change while the app runs, and reading them is most of a validation."""
    from perfmodel.accuracy.observations import published_tables

    return tuple(published_tables())


def published_validation(profile: str = "auto") -> dict:
    """perfmodel.accuracy.validate.validate_tables over the shipped published tables."""
    from perfmodel.accuracy.validate import validate_tables

    result = validate_tables(list(shipped_tables()), None if profile == "auto" else profile)
    return _validation_view(result)


def uploaded_validation(data: bytes, filename: str, profile: str = "auto") -> dict:
    """Validate an uploaded measurement CSV: size-capped, parsed by pandas only, through
    perfmodel.accuracy.observations.build_table (wrong columns -> PerfModelError)."""
    from perfmodel.accuracy.observations import build_table
    from perfmodel.accuracy.validate import validate_tables

    if len(data) > MAX_UPLOAD_BYTES:
        raise PerfModelError(
            f"{filename}: {len(data) / 1e6:.1f} MB is over the {MAX_UPLOAD_BYTES / 1e6:.0f} MB limit"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uploaded.csv"
        path.write_bytes(data)
        table = build_table(
            path, name=f"uploaded:{Path(filename).name}", profile_override=_profile_arg(profile)
        )
        if not table.observations:
            raise PerfModelError(
                f"{filename}: no rows with status ok and a measured ttft_s or tpot_s"
            )
        result = validate_tables([table], _profile_arg(profile))
    return {**_validation_view(result), "notes": list(table.notes)}  # rows dropped, and why


def _profile_arg(profile: str) -> str | None:
    return None if profile in ("auto", "", None) else profile


# --- speculator / draft choices --------------------------------------------------------------
def smaller_models(model: str) -> list[str]:
    """perfmodel.planners.speculation.smaller_models: candidates for a speculator or a draft."""
    from perfmodel.planners.speculation.deploy import smaller_models as smaller
    from perfmodel.specs.models import resolve_model

    return [m.name for m in smaller(resolve_model(model))]


# --- page 2: SpecPrefill planner -------------------------------------------------------------
def specprefill(
    cfg: dict,
    speculator: str,
    batch: int,
    prompt_len: int,
    max_quality_drop: float,
    slo_ttft_s: float | None = None,
) -> dict:
    """perfmodel.planners.specprefill.plan_specprefill (keep rates as the CLI's default) and the
    published quality curve (perfmodel.planners.quality.quality_drop / load_quality)."""
    from perfmodel.planners.quality import load_quality, quality_drop
    from perfmodel.planners.specprefill import DEFAULT_KEEP_RATES, plan_specprefill
    from perfmodel.planners.speculation.deploy import helper_deployment

    target = deployment(cfg)
    spec = helper_deployment(target, speculator, "speculator")
    plan = plan_specprefill(
        target,
        spec,
        batch,
        prompt_len,
        DEFAULT_KEEP_RATES,
        max_quality_drop=max_quality_drop,
        slo_ttft_s=slo_ttft_s or None,
    )
    result = plan.as_dict()
    rows = pd.DataFrame(
        [
            {
                "keep_rate": r["keep_rate"],
                "kept_tokens": r["kept_tokens"],
                "ttft_s": r["ttft_s"],
                "speedup": r["speedup"],
                **{f"{k}_s": v for k, v in r["breakdown_s"].items()},
                "quality_drop": r["quality"]["drop"],
                "meets_quality": r["meets_quality"],
                "fits": r["fits"],
                "memory_gb": r["memory_gb"],
                "qps": r["qps"],
            }
            for r in result["rows"]
        ]
    )
    dense = np.round(np.linspace(0.05, 1.0, 96), 4)
    est = quality_drop(dense)
    table = load_quality()
    return {
        "plan": result,
        "rows": rows,
        "quality_curve": pd.DataFrame(
            {"keep_rate": dense, "drop": est.drop, "unmeasured": est.extrapolated}
        ),
        "quality_points": pd.DataFrame({"keep_rate": table.keep_rates, "drop": table.drops}),
        "quality_source": table.source_text(),
        "describe": target.describe(),
        "speculator": spec.model.name,
        "speculator_weight_dtype": spec.weight_dtype,
        "basis": basis_text(target),
    }


# --- pages 1 and 3: MagicDec planner ---------------------------------------------------------
def acceptance_caption(record: dict | None) -> str:
    """'Acceptance: <basis> — <source>' for a grid record (the configuration shown); the
    basis is given | published | interpolated | nearest | assumed (speculation.acceptance)."""
    if not record:
        return ""
    return f"Acceptance ({record['acceptance_basis']}): {record['acceptance_source']}"


def _sd_setup(cfg: dict, drafts, draft_kv: str, gamma, gpu: str | None = None):
    """Target deployment, draft configs and gammas exactly as `perfmodel specdecode` and
    `perfmodel critical-length` build them (perfmodel.planners.specdecode.draft_configs ...)."""
    from perfmodel.planners import specdecode as sd
    from perfmodel.planners.specdecode_setup import placement_notices
    from perfmodel.planners.speculation.drafts import DEFAULT_BUDGETS, draft_configs

    dep = deployment(cfg, gpu=gpu)
    configs = draft_configs(list(drafts), draft_kv, DEFAULT_BUDGETS)
    placement_notices(dep, configs)  # size and vocabulary checks
    gammas = sd.check_gammas([gamma]) if gamma else np.array(sd.DEFAULT_GAMMAS, float)
    return dep, configs, gammas


def acceptance_status(cfg: dict, drafts: tuple[str, ...], draft_kv: str) -> dict:
    """Whether published acceptance data covers any of these draft configurations
    (perfmodel.planners.speculation.resolve_bases without an assumption): pages offer an
    assumed rate, labeled so, where it does not."""
    from perfmodel.planners.speculation.acceptance import ASSUMED_ACCEPTANCE, resolve_bases

    dep, configs, _ = _sd_setup(cfg, drafts, draft_kv, None)
    bases = resolve_bases(dep, configs, [8192.0], None)
    return {
        "published": any(b.ranked for b in bases),
        "target": dep.model.name,
        "assumed_default": ASSUMED_ACCEPTANCE,
    }


def _policy(acceptance_rate: float | None, assumed_rate: float | None):
    """The planners' policy: the user's rate, else published data, else the assumed rate."""
    from perfmodel.planners.speculation.acceptance import AcceptancePolicy

    return AcceptancePolicy(acceptance_rate, assumed_rate, assumed_competes=False)


def critical_length_view(
    cfg: dict,
    drafts: tuple[str, ...],
    draft_kv: str,
    gamma: int | None,
    acceptance_rate: float | None,
    batches: tuple[int, ...],
    headline_batch: int,
    curve_batches: tuple[int, ...],
    gpus: tuple[str, ...],
    assumed_rate: float | None = None,
) -> dict:
    """perfmodel.planners.specdecode.critical_length (headline, curve over batch, per GPU;
    in perfmodel.planners.critical's one form) and the best speedup vs context."""
    from perfmodel.planners import specdecode as sd
    from perfmodel.planners.critical import from_raw, from_raw_array
    from perfmodel.planners.specdecode_setup import placement_notices

    policy = _policy(acceptance_rate, assumed_rate)
    dep, configs, gammas = _sd_setup(cfg, drafts, draft_kv, gamma)
    top = dep.model.max_position_embeddings
    # the headline: the same call as `perfmodel critical-length --batch B`
    raw = float(sd.critical_length(dep, configs, [float(headline_batch)], gammas, policy)[0])
    head = from_raw(raw, headline_batch, top)
    best = None
    if np.isfinite(raw):
        grid = sd.evaluate_grid(dep, configs, [headline_batch], [raw], gammas, policy)
        ci, gi = grid.best_index(require_fit=False)
        best = grid.record(int(ci[0]), int(gi[0]), 0)
    b = np.array(sorted(set(batches)), float)
    curves = []
    for gpu in dict.fromkeys((dep.gpu.name, *gpus)):
        d, c, g = (
            (dep, configs, gammas)
            if gpu == dep.gpu.name
            else _sd_setup(cfg, drafts, draft_kv, gamma, gpu)
        )
        answers = from_raw_array(sd.critical_length(d, c, b, g, policy), b, top)
        frame = pd.DataFrame(
            [{"gpu": d.gpu.name, "batch": a.batch, **a.as_dict()} for a in answers]
        )
        frame["critical_seq_len"] = frame["critical_seq_len"].astype(float)  # None -> nan
        curves.append(frame.rename(columns={"critical_seq_len_text": "text"}))
    contexts = np.unique(np.round(np.geomspace(128, top, 48)))
    cb = np.array(sorted(set(curve_batches)), float)
    bb, cc = (x.ravel() for x in np.meshgrid(cb, contexts, indexing="ij"))
    grid = sd.evaluate_grid(dep, configs, bb, cc, gammas, policy)
    speedup = pd.DataFrame(
        {
            "batch": bb,
            "context": cc,
            "best_speedup": grid.best_speedup(require_fit=False),
            "fits": grid.fits.any(axis=0),
        }
    )
    return {
        **head.as_dict(),
        "best": best,
        "max_len": int(top),
        "by_gpu": pd.concat(curves, ignore_index=True),
        "speedup": speedup,
        "acceptance": acceptance_caption(
            best
            or grid.record(next((i for i, a in enumerate(grid.acceptance) if a.ranked), 0), 0, 0)
        ),
        "describe": dep.describe(),
        "drafts": [c.label for c in configs],
        "placement": list(placement_notices(dep, configs)),
        "basis": basis_text(dep),
    }


def specdecode_view(
    cfg: dict,
    draft: str,
    kv_method: str,
    batch: int,
    context: int,
    output_len: int,
    acceptance_rate: float | None,
    assumed_rate: float | None = None,
) -> dict:
    """perfmodel.planners.specdecode.evaluate_grid over (KV budget, gamma) at one (batch, context),
    its best configuration and top list, and memory per GPU over a batch sweep; 'pays' is
    whether the best configuration beats plain decoding and fits (specdecode.decode_pays)."""
    from perfmodel.core.memory import memory_report
    from perfmodel.planners import specdecode as sd
    from perfmodel.planners.specdecode_setup import placement_notices

    kv = kv_method if kv_method == "full" else f"{kv_method},full"
    dep, configs, gammas = _sd_setup(cfg, [draft], kv, None)
    policy = _policy(acceptance_rate, assumed_rate)
    grid = sd.evaluate_grid(dep, configs, [batch], [context], gammas, policy, output_len=output_len)
    speed = grid.speedup[:, :, 0]
    heat = pd.DataFrame(speed, index=[c.kv_label for c in configs], columns=gammas.astype(int))
    fits = pd.Series(grid.fits[:, 0], index=heat.index)
    best, top = None, grid.top(0, 5)
    if grid.fits[:, 0].any():
        ci, gi = grid.best_index(require_fit=True)
        best = grid.record(int(ci[0]), int(gi[0]), 0)
    sweep = np.unique(np.round(np.geomspace(1, 2048, 40)))
    mem_grid = sd.evaluate_grid(
        dep,
        configs,
        sweep,
        np.full_like(sweep, float(context)),
        [1],
        acceptance_rate or 0.5,
        output_len=output_len,
    )
    memory = pd.concat(
        [
            pd.DataFrame(
                {"config": c.label, "batch": sweep, "total_gb": mem_grid.memory_total_gb[i]}
            )
            for i, c in enumerate(configs)
        ]
        + [
            pd.DataFrame(
                {
                    "config": "target alone",
                    "batch": sweep,
                    "total_gb": memory_report(dep, sweep, context, output_len).total_gb,
                }
            )
        ],
        ignore_index=True,
    )
    return {
        "heat": heat,
        "fits": fits,
        "best": best,
        "pays": best is not None and sd.decode_pays(best["speedup"], best["fits"]),
        "top": pd.DataFrame(top),
        "memory": memory,
        "capacity_gb": grid.memory_capacity_gb,
        "acceptance": acceptance_caption(best or (top[0] if top else None)),
        "describe": dep.describe(),
        "placement": list(placement_notices(dep, configs)),
        "basis": basis_text(dep),
    }


# --- page 4: recommend and capacity ----------------------------------------------------------
def recommend_view(
    cfg: dict,
    batch: int,
    prompt_len: int,
    output_len: int,
    slo_ttft_s: float | None,
    slo_tpot_s: float | None,
    max_quality_drop: float,
    acceptance_rate: float | None,
) -> dict:
    """perfmodel.planners.recommend.recommend (it chooses the precision and the replicas; a
    replica is the sidebar's GPUs, of the sidebar's type only) as its JSON dict."""
    from perfmodel.planners.recommend import recommend

    rec = recommend(
        deployment_pins(cfg),
        batch,
        prompt_len=prompt_len,
        output_len=output_len,
        slo_ttft_s=slo_ttft_s,
        slo_tpot_s=slo_tpot_s,
        max_quality_drop=max_quality_drop,
        acceptance_rate=acceptance_rate,
        alternatives=[],
    )
    return rec.as_dict()


def capacity_view(
    cfg: dict,
    qps: float,
    prompt_len: int,
    output_len: int,
    slo_ttft_s: float,
    slo_tpot_s: float,
    gpus: tuple[str, ...],
    with_spec: bool = False,
) -> dict:
    """perfmodel.planners.capacity.plan_capacity (the `perfmodel capacity` core) for a fixed workload
    (capacity.fixed_workload) and its JSON. The HTML/Markdown reports are not built here (the
    HTML one carries plotly inline, megabytes, and takes longer than the rest of the view):
    `report_inputs` holds what capacity_report builds them from, on demand (the page's download
    buttons call it only when clicked); None when perfmodel.reports is not installed."""
    import json

    from perfmodel.core.jsonable import json_ready
    from perfmodel.planners.capacity.plan import plan_capacity
    from perfmodel.planners.capacity.workload import fixed_workload
    from perfmodel.planners.pricing_memo import memo

    pins = replace(deployment_pins(cfg), gpu=None, num_gpus=None, tp=None)  # types: `gpus`
    with memo(PRICING):  # a new QPS or SLO prices nothing again
        plan = plan_capacity(
            pins,
            fixed_workload(qps, prompt_len, output_len),
            slo_ttft_s,
            slo_tpot_s,
            list(gpus),
            with_spec=with_spec,  # precisions: the CLI's (the checkpoint's, never upcast)
        )
    payload = json_ready(plan.as_dict())
    curves = pd.concat(
        [
            pd.DataFrame({"option": k, "qps": v["qps"], "cost_per_hour": v["cost_per_hour"]})
            for k, v in plan.curves.items()
        ],
        ignore_index=True,
    )
    out = {
        "options": pd.DataFrame(payload["options"]).drop(columns=["simulation"], errors="ignore"),
        "best": payload["best"],
        "why": payload["why"],
        "curves": curves,
        "assumptions": payload["assumptions"],
        "basis": payload["basis"],
        "json": json.dumps(payload, indent=2),
        "report_inputs": (plan.as_dict(), plan.curves, plan.critical) if _has_reports() else None,
    }
    return out


def _has_reports() -> bool:
    """Whether perfmodel.reports (the HTML/Markdown capacity reports) is installed."""
    import importlib.util

    return importlib.util.find_spec("perfmodel.reports") is not None


def capacity_report(cap: dict, kind: str) -> str:
    """The capacity plan of a capacity_view answer as an HTML ('html') or Markdown
    ('markdown') report of perfmodel.reports, built when asked (a download click)."""
    from perfmodel import reports

    plan, curves, critical = cap["report_inputs"]
    if kind == "html":
        return reports.html_report(plan, curves, critical)
    if kind == "markdown":
        return reports.markdown_report(plan)
    raise ValueError(f"report kind must be 'html' or 'markdown', got {kind!r}")
