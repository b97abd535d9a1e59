"""Accuracy on the measured tables (validation/measurements/*.csv) and on the operator tables.

Per measured table and quantity: MAPE, bias (mean signed relative error, predicted/measured
- 1) and max APE, labeled `in-sample` when the table's profile was fitted on it
(provenance.fitted_on), otherwise by the table's own `sample` column (e.g. `re-measured (not
fitted)`, `held-out model (never fitted)`) or `held-out`. A profile fitted on a single measured table
has no other table to leave out, so its generalization check is leave-one-model-out: the
profile's fitted parameters are refitted on the rows of the other models and scored on the
held model's rows.

Per operator class (`ops_report`): how the table-priced cost model reproduces the measured
operator table. In-sample: the measured curve at its own points (exact by construction).
Held-out: each GEMM weight shape predicted from the other shapes only (ratio to the
roofline, interpolated in log weight size), each attention configuration from the nearest
other configuration: the error the model makes on a shape that was never measured.
`transfer_report`: the table transferred to another GPU (H200) against that GPU's own
`profile --ops` table, which the model never uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from perfmodel.accuracy.observations import Observation, Table, build_table
from perfmodel.core.optable.interpolate import sorted_rows
from perfmodel.core.optable.kernels import KernelPricing, kernel_pricing
from perfmodel.core.optable.load import table_curves
from perfmodel.core.optable.transfer import gemm_roofline
from perfmodel.paths import MEASUREMENTS_DIR
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import read_optable
from perfmodel.specs.profile import Profile, load_profile


def measured_tables() -> list[Table]:
    return [build_table(p) for p in sorted(MEASUREMENTS_DIR.glob("*.csv"))]


@dataclass(frozen=True)
class ErrorSummary:
    """Relative errors e = predicted / measured - 1 over `rows` points: MAPE = mean |e|,
    bias = mean e, max APE = max |e| (fractions)."""

    rows: int
    mape: float
    bias: float
    max_ape: float

    def as_dict(self) -> dict:
        return {"rows": self.rows, "mape": self.mape, "bias": self.bias, "max_ape": self.max_ape}


class _Errors:
    """The error figures of a record that holds an ErrorSummary as `errors`."""

    errors: ErrorSummary

    @property
    def rows(self) -> int:
        return self.errors.rows

    @property
    def mape(self) -> float:
        return self.errors.mape

    @property
    def bias(self) -> float:
        return self.errors.bias

    @property
    def max_ape(self) -> float:
        return self.errors.max_ape


@dataclass(frozen=True)
class MeasuredScore(_Errors):
    """One measured table and quantity under a profile; `sample` says whether the profile
    was fitted on it (in-sample), a leave-one-model-out refit (held_out: that model), or
    the table's own label (held-out)."""

    table: str
    quantity: str
    profile: str
    sample: str
    errors: ErrorSummary
    held_out: str | None = None  # the model left out of the refit

    def as_dict(self) -> dict:
        if self.held_out is None:
            head = {"table": self.table, "quantity": self.quantity}
            return head | {"profile": self.profile, "sample": self.sample} | self.errors.as_dict()
        return (
            {"table": self.table, "quantity": self.quantity, "held_out": self.held_out}
            | self.errors.as_dict()
            | {"profile": self.profile, "sample": self.sample}
        )


@dataclass(frozen=True)
class OpScore(_Errors):
    """One operator class of an operator table: the model's kernel times against the
    measured ones (in-sample, a held-out shape or configuration, or another GPU)."""

    op: str
    sample: str
    errors: ErrorSummary

    def as_dict(self) -> dict:
        return {"op": self.op, "sample": self.sample} | self.errors.as_dict()


def errors_summary(pred, measured) -> ErrorSummary:
    err = np.asarray(pred, float) / np.asarray(measured, float) - 1.0
    return ErrorSummary(
        int(err.size),
        float(np.mean(np.abs(err))),
        float(np.mean(err)),
        float(np.max(np.abs(err))),
    )


def _profile(table: Table, override: Profile | str | None) -> Profile:
    if isinstance(override, Profile):
        return override
    return load_profile(override or table.profile)


def _subset(obs: Observation, keep: np.ndarray) -> Observation:
    """The rows `keep` of an observation (prediction runs on all rows, then selects)."""
    return replace(
        obs,
        labels=[lab for lab, k in zip(obs.labels, keep, strict=True) if k],
        measured=obs.measured[keep],
        predict=lambda p, f=obs.predict: np.asarray(f(p))[keep],
    )


def leave_one_model_out(table: Table, profile: Profile) -> list[MeasuredScore]:
    from perfmodel.accuracy.calibrate import fit_profile

    params = profile.provenance.get("fitted_parameters") or None
    start = profile.with_values(**(profile.provenance.get("start") or {}))
    models = sorted({lab.split(" ")[0] for o in table.observations for lab in o.labels})
    out = []
    for held in models if len(models) > 1 else []:

        def is_held(o, held=held):
            return np.array([lab.split(" ")[0] == held for lab in o.labels])

        train = [_subset(o, ~is_held(o)) for o in table.observations if (~is_held(o)).any()]
        fitted = fit_profile(train, start, params).profile
        for o in table.observations:
            mask = is_held(o)
            if mask.any():
                s = errors_summary(np.asarray(o.predict(fitted))[mask], o.measured[mask])
                sample = f"leave-one-model-out ({held})"
                out.append(MeasuredScore(table.name, o.quantity, profile.name, sample, s, held))
    return out


def measured_report(
    profile: Profile | str | None = None, loo: bool = True, tables: list[Table] | None = None
) -> list[MeasuredScore]:
    """One row per measured table and quantity, plus leave-one-model-out rows."""
    rows = []
    for table in tables if tables is not None else measured_tables():
        prof = _profile(table, profile)
        fitted_on = prof.provenance.get("fitted_on") or []
        label = "in-sample" if table.name in fitted_on else (table.sample or "held-out")
        for o in table.observations:
            s = errors_summary(o.predict(prof), o.measured)
            rows.append(MeasuredScore(table.name, o.quantity, prof.name, label, s))
        if loo and label == "in-sample":
            rows.extend(leave_one_model_out(table, prof))
    return rows


def ops_report(table_name: str = "h100-sxm__torch-cudagraph") -> list[OpScore]:
    """Per operator class: in-sample and held-out-shape errors against the operator table."""
    cv = table_curves(table_name)
    hw = resolve_gpu(cv.table.gpu)
    tc = KernelPricing(cv, hw, True)
    v, out = cv.table.values, []
    g = cv.table.rows("gemm")
    m, k, n, t = (v[c][g] for c in ("m", "k", "n", "time_s"))
    inside = np.concatenate(
        [tc.gemm("", m[(k == a) & (n == b)], a, b, 2.0).time_s for a, b in cv.gemm]
    )
    meas = np.concatenate([t[(k == a) & (n == b)] for a, b in cv.gemm])
    out.append(OpScore("gemm", "in-sample", errors_summary(inside, meas)))
    pred, meas = [], []
    for a, b in cv.gemm:
        others = [(kn, cv.gemm[kn][1]) for kn in cv.gemm if kn != (a, b)]
        sizes = np.array([np.log(x * y) for (x, y), _ in others])
        rows_ = np.array([np.interp(cv.gemm_grid, r.x, r.y) for _, r in others])
        order = np.argsort(sizes)
        s, r = sorted_rows(sizes[order], rows_[order])
        ls = np.log(a * b)
        row = np.array([np.interp(ls, s, r[:, j]) for j in range(r.shape[1])])
        sel = (k == a) & (n == b)
        ratio = np.exp(np.interp(np.log(m[sel]), cv.gemm_grid, row))
        pred.append(ratio * gemm_roofline(m[sel], a, b, 2.0, cv.flops, cv.bw))
        meas.append(t[sel])
    out.append(
        OpScore(
            "gemm", "held-out shape", errors_summary(np.concatenate(pred), np.concatenate(meas))
        )
    )
    for op, store in (("attn_decode", cv.attn_decode), ("attn_prefill", cv.attn_prefill)):
        idx = cv.table.rows(op)
        pred, meas = [], []
        for cfg in store:
            h, kv, hd = cfg
            sel = idx[
                (v["heads"][idx] == h) & (v["kv_heads"][idx] == kv) & (v["head_dim"][idx] == hd)
            ]
            b, c, tt = v["batch"][sel], v["ctx"][sel], v["time_s"][sel]
            rest = {x: y for x, y in store.items() if x != cfg}
            other = KernelPricing(replace(cv, **{op: rest}), hw, False)
            if op == "attn_decode":
                pred.append(other.attn_decode(b, c, h, kv, hd, 2.0).time_s)
            else:
                f = 2.0 * b * h * c * c * hd
                pred.append(other.attn_prefill(f, 4.0 * b * c * h * hd * 2.0, h, kv, hd).time_s)
            meas.append(tt)
        errors = errors_summary(np.concatenate(pred), np.concatenate(meas))
        out.append(OpScore(op, "held-out configuration", errors))
    for op, key, kernels in (("rmsnorm", "rmsnorm", 1.0), ("silu_mul", "kernel", 2.0)):
        idx = cv.table.rows(op)
        if len(idx):
            by, tt = v["bytes"][idx] / kernels, v["time_s"][idx]
            if op == "rmsnorm":
                pred = np.concatenate(
                    [tc.eltwise(key, by[v["n"][idx] == d], d).time_s for d in cv.rmsnorm_by_width]
                )
                tt = np.concatenate([tt[v["n"][idx] == d] for d in cv.rmsnorm_by_width])
            else:
                pred = kernels * tc.eltwise(key, by).time_s
            out.append(OpScore(op, "in-sample", errors_summary(pred, tt)))
    return out


# An operator table measured by `perfmodel profile --ops` on a GPU the shipped table was not
# measured on, kept out of the model: the check of the cross-GPU transfer, kernel by kernel.
HELD_OUT_GPU_OPS = MEASUREMENTS_DIR / "profiler_h200_2026-11-26" / "ops_llama-3.1-8b.csv"


def transfer_report(
    table_name: str = "h100-sxm__torch-cudagraph", held_out=HELD_OUT_GPU_OPS
) -> list[OpScore]:
    """Per operator class: the shipped table transferred to the held-out table's GPU (ratio
    to the roofline of that GPU's peaks) against what was measured there. Empty when the
    held-out table is not installed (it ships with the repository, not the wheel) or the
    table does not transfer to that GPU."""
    if not held_out.is_file():
        return []
    held = read_optable(held_out)
    hw = resolve_gpu(held.gpu)
    tc = kernel_pricing(table_curves(table_name), hw)
    if tc is None:
        return []
    # in-sample since the H200 table ships and fits the transfer latencies (fit_transfer.py)
    v, sample = held.values, f"{hw.name} transferred (in-sample: fits the transfer latencies)"
    classes: dict[str, tuple[list, list]] = {}

    def add(name, pred, idx):
        p, m = classes.setdefault(name, ([], []))
        p.append(np.atleast_1d(pred))
        m.append(v["time_s"][idx])

    for i in held.rows("gemm"):
        m = v["m"][i : i + 1]
        name = "gemm (M <= 64)" if m[0] <= 64 else "gemm (M >= 128)"
        add(name, tc.gemm(held.shape[i], m, v["k"][i], v["n"][i], 2.0).time_s, [i])
    for i in held.rows("attn_decode"):
        b, c, h, kv, hd = (
            v[x][i : i + 1] for x in ("batch", "ctx", "heads", "kv_heads", "head_dim")
        )
        add("attn_decode", tc.attn_decode(b, c, h[0], kv[0], hd[0], 2.0).time_s, [i])
    for i in held.rows("attn_prefill"):
        h, kv, hd = (v[x][i] for x in ("heads", "kv_heads", "head_dim"))
        add(
            "attn_prefill",
            tc.attn_prefill(v["flops"][i : i + 1], v["bytes"][i : i + 1], h, kv, hd).time_s,
            [i],
        )
    for i in held.rows("rmsnorm"):
        add("rmsnorm", tc.eltwise("rmsnorm", v["bytes"][i : i + 1], v["n"][i]).time_s, [i])
    for i in held.rows("silu_mul"):  # two kernels (SiLU, multiply), bytes split evenly
        add("silu_mul", 2.0 * tc.eltwise("kernel", v["bytes"][i : i + 1] / 2.0).time_s, [i])
    return [
        OpScore(name, sample, errors_summary(np.concatenate(p), np.concatenate(m)))
        for name, (p, m) in classes.items()
    ]


def compare_measurements(table: Table, reference: Table) -> list[dict]:
    """Point-for-point comparison of two measurement tables of the same grid (e.g. our torch
    runner vs the reference benchmark): rows matched on (model, batch_size, prompt_len,
    context_len); per model and quantity the MAPE, bias and max APE of table / reference - 1
    (measured vs measured: no model involved), and the worst point."""
    keys = ["model", "batch_size", "prompt_len"]
    out = []
    for quantity in ("tpot_s", "ttft_s"):
        cols = [c for c in (*keys, "context_len", quantity) if c in table.frame.columns]
        a = table.frame[table.frame[quantity].notna()][cols]
        b = reference.frame[reference.frame[quantity].notna()][cols]
        on = [c for c in cols if c != quantity]
        pair = a.merge(b, on=on, suffixes=("", "_ref"))
        for model, g in pair.groupby("model", sort=True):
            err = g[quantity].to_numpy() / g[f"{quantity}_ref"].to_numpy() - 1.0
            w = int(np.argmax(np.abs(err)))
            r = g.iloc[w]
            out.append(
                {
                    "model": model,
                    "quantity": quantity,
                    **errors_summary(g[quantity], g[f"{quantity}_ref"]).as_dict(),
                    "worst": f"b={int(r['batch_size'])} L={int(r['prompt_len'])}: "
                    f"{r[quantity] * 1e3:.4g} ms vs {r[f'{quantity}_ref'] * 1e3:.4g} ms",
                }
            )
    return out
