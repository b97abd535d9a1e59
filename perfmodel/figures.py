"""Plotly figures shared by the CLI, the app and reports (plotly is imported lazily).

Every figure is computed by the planner functions (no second model) and says what it rests
on: "modeled (profile X, mode)".
"""

from __future__ import annotations

import numpy as np

from perfmodel.deployment import Deployment


def _basis(dep: Deployment) -> str:
    return f"modeled (profile {dep.profile.name}, {dep.mode})"


def speedup_vs_context_figure(
    target: Deployment,
    configs,
    batches=(16, 64, 256),
    contexts=None,
    gammas=None,
    acceptance_rate: float | None = None,
    require_fit: bool = True,
):
    """Best speculative-decoding speedup (over draft configs and gammas) against the context
    length, one line per batch size; configurations that do not fit are left out (gaps)."""
    import plotly.graph_objects as go

    from perfmodel import specdecode as sd

    gammas = sd.DEFAULT_GAMMAS if gammas is None else gammas
    if contexts is None:
        top = min(target.model.max_position_embeddings, 131072)
        contexts = np.unique(np.round(np.geomspace(128, top, 40)))
    b = np.asarray(batches, float)
    c = np.asarray(contexts, float)
    bb, cc = np.meshgrid(b, c, indexing="ij")
    grid = sd.evaluate_grid(target, configs, bb.ravel(), cc.ravel(), gammas, acceptance_rate)
    best = grid.best_speedup(require_fit).reshape(bb.shape)
    fig = go.Figure()
    for i, batch in enumerate(b):
        y = np.where(np.isfinite(best[i]), best[i], np.nan)
        fig.add_trace(go.Scatter(x=c, y=y, mode="lines", name=f"batch {int(batch)}"))
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="break-even")
    fig.update_layout(
        title=f"Speculative decoding speedup vs context: {target.model.name} on "
        f"{target.num_gpus}x {target.gpu.name}, {_basis(target)}",
        xaxis_title="context length (tokens)",
        yaxis_title="speedup over plain decoding (T_auto / T_SD)",
        xaxis_type="log",
        legend_title="batch size",
    )
    return fig


def critical_length_curve_figure(
    target: Deployment,
    configs,
    batches=(8, 16, 32, 64, 128, 256, 512),
    gammas=None,
    acceptance_rate: float | None = None,
    curve: list[dict] | None = None,
):
    """Critical sequence length against batch size (computed, or from a given curve
    [{batch, critical_seq_len}] such as the critical-length command's JSON)."""
    import plotly.graph_objects as go

    from perfmodel import specdecode as sd

    if curve is None:
        gammas = sd.DEFAULT_GAMMAS if gammas is None else gammas
        b = np.asarray(batches, float)
        crit = sd.critical_length(target, configs, b, gammas, acceptance_rate)
    else:
        b = np.array([e["batch"] for e in curve], float)
        crit = np.array(
            [np.nan if e["critical_seq_len"] is None else e["critical_seq_len"] for e in curve]
        )
    fig = go.Figure(go.Scatter(x=b, y=crit, mode="lines+markers", name="critical length"))
    fig.update_layout(
        title=f"Critical sequence length: {target.model.name} on {target.num_gpus}x "
        f"{target.gpu.name}, {_basis(target)}",
        xaxis_title="batch size",
        yaxis_title="critical sequence length (tokens; speedup > 1 beyond)",
        xaxis_type="log",
    )
    return fig
