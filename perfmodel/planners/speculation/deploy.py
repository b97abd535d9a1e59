"""The helper model of both techniques: how it is deployed and what it costs in memory.

One rule for every command, page and planner (DESIGN.md):
- The helper (SpecPrefill's speculator, MagicDec's draft) runs in BF16 weights unless the
  user says otherwise, as in the SpecPrefill paper (Llama-3.1-8B-Instruct BF16 beside
  Llama-3.1-405B-Instruct-FP8, both TP8); MagicDec's published rows are BF16 throughout
  (validation/published/magicdec_*.csv). Its KV cache uses
  the target's KV dtype. Self-speculation is the target itself (its own weights and dtype).
- On the target's GPUs it uses the target's TP degree; on its own GPUs (SpecPrefill
  --speculator-gpus N) TP N. Its heads must divide by its TP degree.
- It must be no larger than the target and share its vocabulary (token ids pass between
  them).
- Memory beside the target (per GPU): the helper's weights (none for self-speculation) plus
  its KV cache of min(KV budget, tokens) per sequence (HelperMemory).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.memory import kv_bytes_per_token_per_gpu, weight_bytes_per_gpu
from perfmodel.errors import PerfModelError
from perfmodel.specs.dtypes import weight_bytes
from perfmodel.specs.models import ModelSpec, list_models, resolve_model

HELPER_WEIGHT_DTYPE = "bf16"  # the helper's weights unless the user says otherwise
SELF = "self"
ROLES = ("speculator", "draft")


def check_helper(target: ModelSpec, helper: ModelSpec, role: str = "speculator") -> None:
    """A helper must be no larger than the target and share its vocabulary (token ids)."""
    if helper.param_count > target.param_count:
        raise PerfModelError(
            f"{role} {helper.name} ({helper.param_count / 1e9:.1f}B parameters) is larger than "
            f"the target {target.name} ({target.param_count / 1e9:.1f}B)"
        )
    if helper.vocab_size != target.vocab_size:
        raise PerfModelError(
            f"{role} {helper.name} has vocabulary size {helper.vocab_size} but the target "
            f"{target.name} has {target.vocab_size}: token ids pass between them, so they must "
            "share a tokenizer"
        )


def helper_deployment(
    target: Deployment,
    name: str | ModelSpec,
    role: str = "speculator",
    weight_dtype: str | None = None,
    num_gpus: int | None = None,
) -> Deployment:
    """The helper's deployment (see the module docstring for the rule).

    name: a model alias/name/path, or 'self' (a draft that is the target with a compressed
    KV cache). num_gpus: None = on the target's GPUs with its TP; N = on its own N GPUs of the
    target's type, TP N. Raises PerfModelError for a larger model or another vocabulary.
    """
    if role not in ROLES:
        raise PerfModelError(f"unknown helper role '{role}' (speculator or draft)")
    if isinstance(name, str) and name.strip().lower() == SELF:
        if role != "draft":
            raise PerfModelError(
                "self-speculation is a MagicDec draft, not a SpecPrefill speculator"
            )
        return target
    dtype = (weight_dtype or HELPER_WEIGHT_DTYPE).lower()
    if num_gpus is None:
        weight_bytes(dtype)  # validates the dtype
        dep = replace(target.with_model(name), weight_dtype=dtype)
    else:
        dep = make_deployment(
            name,
            target.gpu,
            num_gpus,
            num_gpus,
            dtype,
            target.kv_dtype,
            target.mode,
            target.profile,
        )
    check_helper(target.model, dep.model, role)
    return dep


@dataclass(frozen=True)
class HelperMemory:
    """What the helper holds per GPU beside the target: weights + KV per sequence (bytes)."""

    weight_bytes: float
    kv_bytes_per_seq: np.ndarray

    def total(self, batch) -> np.ndarray:
        return self.weight_bytes + np.asarray(batch, float) * self.kv_bytes_per_seq


def helper_memory(
    helper: Deployment, tokens, kv_budget=np.inf, self_speculation: bool = False
) -> HelperMemory:
    """The helper's memory per GPU beside the target: its weights (none when it is the
    target itself) and its KV cache of min(kv_budget, tokens) tokens per sequence."""
    held = np.minimum(np.asarray(kv_budget, float), np.asarray(tokens, float))
    weights = 0.0 if self_speculation else float(weight_bytes_per_gpu(helper))
    return HelperMemory(weights, kv_bytes_per_token_per_gpu(helper) * held)


# --- default helper choice ------------------------------------------------------------------
def _family(name: str) -> str:
    """'Llama-3.1-405B' -> 'Llama-3.1'; 'Qwen2.5-72B' -> 'Qwen2.5'."""
    return name.rsplit("-", 1)[0] if "-" in name else name


def smaller_models(target: ModelSpec) -> list[ModelSpec]:
    """Shipped models that share the target's vocabulary (same tokenizer) and are smaller,
    those of the same family first, then by size ascending."""
    out = []
    for name in list_models():
        m = resolve_model(name)
        if (
            m.name != target.name
            and m.vocab_size == target.vocab_size
            and m.model_type == target.model_type
            and m.param_count < target.param_count
        ):
            out.append(m)
    fam = _family(target.name)
    return sorted(out, key=lambda m: (_family(m.name) != fam, m.param_count))


def default_speculator(target, tp: int = 1) -> str | None:
    """The smallest smaller model of the target's family (8B for 70B/405B), else of its
    vocabulary (1B for 8B); None when there is none (or none whose heads divide by tp)."""
    for m in smaller_models(resolve_model(target)):
        if m.num_heads % tp == 0:
            return m.name
    return None
