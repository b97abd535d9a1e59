"""The context-window rule, the same for every command, planner and page.

A request holds prompt + output tokens: prompt_len + output_len <= the model's window
(config.json max_position_embeddings). Commands that price a pass at a given context
(specprefill's TTFT: output 0; specdecode's step at context L: output 0) check the context
itself. Beyond the window is refused (exit 2, naming the limit) unless the caller asks for it
(--beyond-context); then the numbers are modeled and labelled as beyond the window (the
model was not trained there; RoPE scaling, quality and the framework's max_model_len are not
modeled).
"""

from __future__ import annotations

import numpy as np

from perfmodel.planners.feasibility.reasons import CONTEXT, Reason, Verdict
from perfmodel.specs.models import ModelSpec

BEYOND_OPTION = "--beyond-context"


def context_verdict(
    model: ModelSpec, prompt_len, output_len=0, beyond_context: bool = False
) -> Verdict:
    """Feasible when every prompt_len + output_len <= model.max_position_embeddings (arrays
    broadcast; the longest request is named); beyond it only when asked, then labelled."""
    total = np.asarray(prompt_len, float) + np.asarray(output_len, float)
    window = int(model.max_position_embeddings)
    longest = float(np.max(total)) if total.size else 0.0
    if longest <= window:
        return Verdict()
    p = np.broadcast_to(np.asarray(prompt_len, float), total.shape).ravel()
    o = np.broadcast_to(np.asarray(output_len, float), total.shape).ravel()
    i = int(np.argmax(total.ravel()))
    what = f"prompt+output ({p[i]:.0f}+{o[i]:.0f})" if o[i] > 0 else f"context {p[i]:.0f}"
    if beyond_context:
        return Verdict(
            labels=(
                f"beyond {model.name}'s context window of {window} tokens (asked for with "
                f"{BEYOND_OPTION}): modeled, never trained or measured there",
            )
        )
    message = (
        f"{what} exceeds {model.name}'s context window of {window} tokens; shorten it, or "
        f"pass {BEYOND_OPTION} to model it anyway (labelled)"
    )
    return Verdict((Reason(CONTEXT, message, float(window), longest, BEYOND_OPTION),))


def within_context(model: ModelSpec, prompt_len, output_len=0) -> np.ndarray:
    """Boolean mask of the requests inside the window (validate drops the others, counted)."""
    total = np.asarray(prompt_len, float) + np.asarray(output_len, float)
    return total <= model.max_position_embeddings
