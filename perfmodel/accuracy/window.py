"""Measured rows outside their model's context window: dropped and counted, by the one rule
of the feasibility layer (planners.feasibility.context: prompt_len + output_len - 1 positions
<= the model's window)."""

from __future__ import annotations

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility.context import within_context
from perfmodel.specs.models import resolve_model
from perfmodel.specs.units import plural


def drop_beyond_context(frame, notes: list[str]):
    """Drop rows that do not fit their model's context window (feasibility.context, the one
    rule: prompt_len + output_len - 1 positions), counted in `notes` per model; unknown
    models are left for the deployment check to name."""
    output = frame["output_len"].fillna(0).to_numpy(float) if "output_len" in frame.columns else 0
    prompt = frame["prompt_len"].to_numpy(float)
    keep = np.ones(len(frame), bool)
    for name in frame["model"].astype(str).unique():
        try:
            model = resolve_model(name)
        except PerfModelError:
            continue
        rows = (frame["model"].astype(str) == name).to_numpy()
        beyond = rows & ~within_context(model, prompt, output)
        if beyond.any():
            notes.append(
                f"dropped {plural(int(beyond.sum()), 'row')}: prompt_len + output_len - 1 beyond "
                f"{model.name}'s context window of {model.max_position_embeddings} tokens"
            )
            keep &= ~beyond
    return frame if keep.all() else frame[keep].reset_index(drop=True)
