"""The context-window rule, the same for every command, planner, page and loader.

A request of prompt_len tokens that generates output_len tokens feeds the model
prompt_len + output_len - 1 positions (the last generated token is sampled, never fed back
or stored), so it fits when prompt_len + max(output_len - 1, 0) <= the model's window
(config.json max_position_embeddings): a TTFT-only request (one output token) may fill the
whole window, as the SpecPrefill paper's 128k-token rows do. Commands that price a pass at
a given context (specprefill's TTFT, specdecode's step at context L) pass output_len 0 and
check the context itself. Beyond the window is refused (exit 2, naming the limit) unless the
caller asks for it (--beyond-context); then the numbers are modeled and labelled as beyond
the window (the model was not trained there; RoPE scaling, quality and the framework's
max_model_len are not modeled).
"""

from __future__ import annotations

import numpy as np

from perfmodel.planners.feasibility.reasons import CONTEXT, Reason, Verdict
from perfmodel.specs.models import ModelSpec

BEYOND_OPTION = "--beyond-context"


def context_verdict(
    model: ModelSpec, prompt_len, output_len=0, beyond_context: bool = False
) -> Verdict:
    """Feasible when every request's positions (module docstring) fit the window (arrays
    broadcast; the longest request is named); beyond it only when asked, then labelled."""
    total = positions(prompt_len, output_len)
    window = int(model.max_position_embeddings)
    longest = float(np.max(total)) if total.size else 0.0
    if longest <= window:
        return Verdict()
    p = np.broadcast_to(np.asarray(prompt_len, float), total.shape).ravel()
    o = np.broadcast_to(np.asarray(output_len, float), total.shape).ravel()
    i = int(np.argmax(total.ravel()))
    what = (
        f"prompt+output ({p[i]:.0f}+{o[i]:.0f}, {total.ravel()[i]:.0f} positions)"
        if o[i] > 0
        else f"context {p[i]:.0f}"
    )
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


def positions(prompt_len, output_len=0) -> np.ndarray:
    """Positions a request feeds the model: prompt + max(output - 1, 0) (module docstring)."""
    out = np.maximum(np.asarray(output_len, float) - 1.0, 0.0)
    return np.asarray(prompt_len, float) + out


def within_context(model: ModelSpec, prompt_len, output_len=0) -> np.ndarray:
    """Boolean mask of the requests inside the window (validate drops the others, counted)."""
    return positions(prompt_len, output_len) <= model.max_position_embeddings
