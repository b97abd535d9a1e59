"""The helper model of both techniques: how it is deployed and what it costs in memory.

One rule for every command, page and planner (DESIGN.md):
- The helper (SpecPrefill's speculator, MagicDec's draft) runs in BF16 weights unless the
  user says otherwise, as in the SpecPrefill paper (Llama-3.1-8B-Instruct BF16 beside
  Llama-3.1-405B-Instruct-FP8, both TP8); MagicDec's published rows are BF16 throughout
  (validation/published/magicdec_*.csv). Its KV cache uses
  the target's KV dtype. Self-speculation is the target itself (its own weights and dtype).
- Placement (helper_placement, recorded in every result): on the target's GPUs it runs on
  the first pipeline stage's GPUs (all of the target's GPUs when pp = 1) with the target's
  TP degree and no pipeline of its own (FIRST_STAGE, the default; where the target's TP does
  not divide the helper's heads, at the largest TP that divides the target's and the heads,
  on that many of each TP group's GPUs: helper_tp); on its own GPUs (SpecPrefill
  --speculator-gpus N) TP N (OWN_GPUS); self-speculation is the target itself, on every
  stage (SELF). Its heads must divide by its TP degree. Its time is its own deployment's
  (one stage), summed with the target's where they share GPUs.
- It must be no larger than the target and share its vocabulary (token ids pass between
  them). A SpecPrefill speculator scores every prompt token by its attention over the whole
  prompt, so it must attend to all of it in every layer: a speculator with sliding-window or
  chunked layers, or with MLA (whose token scoring over the latent cache is not modeled), is
  refused (scores_whole_prompt). MagicDec drafts (dense or MoE, any attention) only need the
  vocabulary.
- Memory beside the target (per GPU): the helper's weights (none for self-speculation) plus
  its KV cache of min(KV budget, tokens) per sequence (HelperMemory), counted where it runs:
  core.memory adds these extra bytes to the first stage's GPUs only (pp > 1). A
  self-speculation draft's compressed KV lies on every stage with the target's layers; the
  MagicDec planner counts it as extra tokens of the target's own KV cache.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.memory import kv_bytes_per_seq_per_gpu, weight_bytes_per_gpu
from perfmodel.errors import PerfModelError
from perfmodel.specs.dtypes import weight_bytes
from perfmodel.specs.models import ModelSpec, list_models, resolve_model
from perfmodel.specs.units import plural

HELPER_WEIGHT_DTYPE = "bf16"  # the helper's weights unless the user says otherwise
SELF = "self"
ROLES = ("speculator", "draft")
FIRST_STAGE = "first_stage"  # on the target's first pipeline stage (all its GPUs at pp = 1)
OWN_GPUS = "own_gpus"


def scores_whole_prompt(model: ModelSpec) -> str:
    """'' when the model can score SpecPrefill tokens (full attention over the prompt in
    every layer, per-head keys), else why not."""
    if model.is_mla:
        return "its MLA layers keep a latent KV cache (token scoring over it is not modeled)"
    if any(g.window for g in model.layer_groups()):
        return f"its {model.attention_kind} layers do not attend to the whole prompt"
    return ""


def check_helper(target: ModelSpec, helper: ModelSpec, role: str = "speculator") -> None:
    """A helper must be no larger than the target and share its vocabulary (token ids); a
    speculator must attend to the whole prompt (module docstring)."""
    why = scores_whole_prompt(helper) if role == "speculator" else ""
    if why:
        raise PerfModelError(
            f"speculator {helper.name} cannot score SpecPrefill tokens: {why}; choose a "
            "full-attention speculator (--speculator)"
        )
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
    KV cache). num_gpus: None = on the target's first stage's GPUs with its TP (one replica's
    worth per target replica, no pipeline); N = on its own N GPUs of the target's type, TP N.
    Raises PerfModelError for a larger model or another vocabulary.
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
        if target.pp > 1:  # the first stage's GPUs: TP as the target, one stage
            target = replace(target, pp=1, num_gpus=target.num_gpus // target.pp)
        m = resolve_model(name)
        tp = helper_tp(target.tp, m)
        if tp == target.tp:
            dep = replace(target.with_model(m), weight_dtype=dtype)
        else:  # on tp of the target's tp GPUs per replica, no expert parallelism
            gpus = target.num_gpus // (target.tp * target.attn_dp) * tp
            dep = replace(target, model=m, tp=tp, ep=1, num_gpus=gpus, weight_dtype=dtype)
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


def helper_tp(target_tp: int, helper: ModelSpec) -> int:
    """The helper's TP on the target's GPUs: the target's TP when it divides the helper's
    attention heads, else the largest divisor of it that does (and that its KV heads divide,
    or that divides them), so the helper runs on that many of each TP group's GPUs. E.g.
    Qwen2.5-7B (28 heads, 4 KV heads) beside a TP8 target runs at TP4 (vLLM's
    draft_tensor_parallel_size); 1 always qualifies."""
    heads, kv, target_tp = helper.num_heads, helper.num_kv_heads, int(target_tp)
    if heads % target_tp == 0:
        return target_tp
    fits = (
        tp
        for tp in range(target_tp - 1, 0, -1)
        if target_tp % tp == 0 and heads % tp == 0 and (kv % tp == 0 or tp % kv == 0)
    )
    return next(fits, 1)


def helper_placement(target: Deployment, helper: Deployment) -> str:
    """Where the helper runs: SELF (it is the target), FIRST_STAGE (on the target's first
    stage's GPUs, with its TP) or OWN_GPUS (module docstring)."""
    if helper is target or helper == target:
        return SELF
    same = helper.gpu.name == target.gpu.name and helper.pp == 1
    if same and helper.tp == target.tp and helper.num_gpus * target.pp == target.num_gpus:
        return FIRST_STAGE
    # a helper the target's TP does not divide, at the TP helper_deployment gives it (on its
    # own GPUs at exactly that TP it reads the same: callers that place it there say so)
    if same and helper.tp < target.tp and helper.tp == helper_tp(target.tp, helper.model):
        if helper.replicas == target.num_gpus // (target.tp * target.attn_dp * target.pp):
            return FIRST_STAGE
    return OWN_GPUS


def describe_placement(target: Deployment, helper: Deployment) -> str:
    """'first stage (8 GPUs, TP8)', 'own 8 GPUs (TP8)' or 'the target itself'."""
    where = helper_placement(target, helper)
    if where == SELF:
        return "the target itself"
    gpus = helper.num_gpus // max(helper.replicas, 1)
    if where == FIRST_STAGE and helper.tp < target.tp:
        stage = "first stage's" if target.pp > 1 else "target's"
        return (
            f"{helper.tp} of the {stage} {plural(target.tp, 'GPU')} per TP group "
            f"(TP{helper.tp}: its {helper.model.num_heads} attention heads do not divide by "
            f"TP{target.tp})"
        )
    if where == FIRST_STAGE:
        return (
            f"the first stage's {plural(gpus, 'GPU')} (TP{helper.tp})"
            if target.pp > 1
            else f"the target's {plural(gpus, 'GPU')} (TP{helper.tp})"
        )
    return f"its own {plural(gpus, 'GPU')} (TP{helper.tp})"


class HelperMemory(NamedTuple):
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
    return HelperMemory(weights, kv_bytes_per_seq_per_gpu(helper, held))


# --- default helper choice ------------------------------------------------------------------
def _tokenizer_family(m: ModelSpec) -> str:
    """Models of one model_type (a MoE and its dense siblings alike: qwen3_moe ~ qwen3)."""
    return m.model_type.removesuffix("_moe")


def _family(name: str) -> str:
    """'Llama-3.1-405B' -> 'Llama-3.1'; 'Qwen2.5-72B' -> 'Qwen2.5'."""
    return name.rsplit("-", 1)[0] if "-" in name else name


def smaller_models(target: ModelSpec, names: list[str] | None = None) -> list[ModelSpec]:
    """Shipped models that share the target's vocabulary (same tokenizer) and are smaller,
    those of the same family first, then by size ascending (names: only these shipped
    models; None: all of them)."""
    out = []
    for name in list_models() if names is None else names:
        m = resolve_model(name)
        if (
            m.name != target.name
            and m.vocab_size == target.vocab_size
            and _tokenizer_family(m) == _tokenizer_family(target)
            and m.param_count < target.param_count
        ):
            out.append(m)
    fam = _family(target.name)
    return sorted(out, key=lambda m: (_family(m.name) != fam, m.param_count))


def default_speculator(target, tp: int = 1, role: str = "speculator") -> str | None:
    """The smallest smaller model of the target's family (8B for 70B/405B), else of its
    vocabulary (1B for 8B); None when there is none (or none whose heads divide by tp).
    A speculator must also score the whole prompt (scores_whole_prompt); a draft need not.
    The target's family comes first in smaller_models' order, so its models are read first
    (a shipped model's name is its registry name) and every shipped model only when none of
    them serves: the same answer without loading ~20 model configs on the common path."""
    target = resolve_model(target)
    family = [name for name in list_models() if _family(name) == _family(target.name)]
    for names in (family, None):
        for m in smaller_models(target, names):
            if m.num_heads % tp == 0 and not (role == "speculator" and scores_whole_prompt(m)):
                return m.name
    return None
