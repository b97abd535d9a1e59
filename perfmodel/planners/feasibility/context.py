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

from perfmodel.planners.feasibility.reasons import CONTEXT, Reason, Verdict
from perfmodel.specs.context import (  # noqa: F401 (the rule itself: specs.context)
    BEYOND_OPTION,
    context_problem,
    positions,
    within_context,
)
from perfmodel.specs.models import ModelSpec


def context_verdict(
    model: ModelSpec, prompt_len, output_len=0, beyond_context: bool = False
) -> Verdict:
    """Feasible when every request's positions (specs.context) fit the window (arrays
    broadcast; the longest request is named); beyond it only when asked, then labelled."""
    problem = context_problem(model, prompt_len, output_len)
    if problem is None:
        return Verdict()
    message, window, longest = problem
    if beyond_context:
        return Verdict(
            labels=(
                f"beyond {model.name}'s context window of {int(window)} tokens (asked for with "
                f"{BEYOND_OPTION}): modeled, never trained or measured there",
            )
        )
    return Verdict((Reason(CONTEXT, message, window, longest, BEYOND_OPTION),))
