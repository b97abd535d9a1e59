"""The context-window rule on a model spec (the lowest layer that needs it: the profiler,
the feasibility layer and the loaders use it from here).

A request of prompt_len tokens that generates output_len tokens feeds the model
prompt_len + max(output_len - 1, 0) positions (the last generated token is sampled, never fed
back or stored): it fits when that is <= the model's window (config.json
max_position_embeddings). A TTFT-only request (one output token) may fill the whole window.
"""

from __future__ import annotations

import numpy as np

BEYOND_OPTION = "--beyond-context"


def positions(prompt_len, output_len=0) -> np.ndarray:
    """Positions a request feeds the model: prompt + max(output - 1, 0)."""
    out = np.maximum(np.asarray(output_len, float) - 1.0, 0.0)
    return np.asarray(prompt_len, float) + out


def within_context(model, prompt_len, output_len=0) -> np.ndarray:
    """Boolean mask of the requests inside the model's window."""
    return positions(prompt_len, output_len) <= model.max_position_embeddings


def context_problem(
    model, prompt_len, output_len=0, option: str | None = BEYOND_OPTION
) -> tuple[str, float, float] | None:
    """(one line naming the limit and `option`, the flag that models beyond it (None: there
    is none, e.g. a measurement), window, longest positions) when some request exceeds the
    window, else None; the longest request is named."""
    total = positions(prompt_len, output_len)
    window = int(model.max_position_embeddings)
    if total.size == 0 or float(np.max(total)) <= window:
        return None
    p = np.broadcast_to(np.asarray(prompt_len, float), total.shape).ravel()
    o = np.broadcast_to(np.asarray(output_len, float), total.shape).ravel()
    i = int(np.argmax(total.ravel()))
    longest = float(total.ravel()[i])
    what = (
        f"prompt+output ({p[i]:.0f}+{o[i]:.0f}, {longest:.0f} positions)"
        if o[i] > 0
        else f"context {p[i]:.0f}"
    )
    message = f"{what} exceeds {model.name}'s context window of {window} tokens; shorten it"
    if option:
        message += f", or pass {option} to model it anyway (labelled)"
    return message, float(window), longest
