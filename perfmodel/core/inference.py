"""Prefill (TTFT), decode step (TPOT) and end-to-end request time from the operator costs.

- forward pass time = sum over operators of op_time + overheads (cost.py).
- TTFT = one prefill pass over the prompt (logits for its last token; the first token's
  sampling is in the per-token overhead).
- TPOT = mean decode step over the output: steps see contexts prompt+1 .. prompt+output-1,
  and step time is linear in the context (KV reads, attention FLOPs), so the mean step is the
  step at the mean context, prompt + output/2.
- e2e = TTFT + (output - 1) * TPOT;  throughput = replicas * batch * output / e2e.
- pipeline parallelism (pp > 1): each stage is a forward pass over its layers (lm_head and
  the per-token overhead on the last stage only) for one micro-batch; pipeline.py turns the
  stage times and the stage-to-stage transfers into TTFT (GPipe bubble) and the decode step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from perfmodel.core import pipeline
from perfmodel.core.arrays import zeros_like
from perfmodel.core.collective import pass_allreduce_seconds
from perfmodel.core.cost import OpTime, kernels_per_pass, op_time, overhead_time
from perfmodel.core.deployment import Deployment, TpLink, tp_link
from perfmodel.core.identity_memo import by_identity
from perfmodel.core.ops import OpCost, forward_ops, make_shape
from perfmodel.core.optable.kernels import kernel_pricing
from perfmodel.core.optable.price import (
    DECODE_MAX_TOKENS,
    TablePass,
    price_pass,
    unsampled_norms,
)


class PassResult(NamedTuple):
    """One pass operator by operator: per-op costs and times (with the compute/memory split
    of the roofline), the fixed overhead, the total and the operator table's notices."""

    time_s: np.ndarray
    overhead_s: np.ndarray
    ops: list[OpCost]
    times: list[OpTime]
    table: TablePass | None = None

    @property
    def notices(self) -> tuple[str, ...]:
        """Operator-table clamps and transfers (worked out when first read: TablePass)."""
        return self.table.notices if self.table is not None else ()


class _PassSetup(NamedTuple):
    """What every pass of one deployment reads besides its shape, worked out once per
    deployment object (by_identity): a search prices hundreds of passes of a few dozen."""

    attn_dp: int
    w_bytes: float
    kv_bytes: float
    compute_dtype: str
    link: TpLink
    kp: object  # kernel pricing by the operator table, or None (roofline)


@by_identity
def _setup(dep: Deployment) -> _PassSetup:
    # a measured table prices Llama blocks only (ModelSpec.llama_block; table_skipped)
    kp = kernel_pricing(dep.optable, dep.gpu) if dep.model.llama_block else None
    return _PassSetup(dep.attn_dp, dep.w_bytes, dep.kv_bytes, dep.compute_dtype, tp_link(dep), kp)


def _forward_ops(model, shape, w_bytes: float, kv_bytes: float) -> list[OpCost]:
    """ops.forward_ops, kept per value for a pass of one shape: the FLOPs and bytes do not
    depend on the GPU, and a search prices the same stage and shape on several GPU types."""
    if isinstance(shape.batch, np.ndarray):  # a sweep: arrays are not keys
        return forward_ops(model, shape, w_bytes, kv_bytes)
    return list(_kept_ops(model, shape, w_bytes, kv_bytes))


@lru_cache(maxsize=1024)
def _kept_ops(model, shape, w_bytes: float, kv_bytes: float) -> tuple[OpCost, ...]:
    return tuple(forward_ops(model, shape, w_bytes, kv_bytes))


def _priced_ops(dep: Deployment, batch, new_tokens, cached, logits_per_seq, kv_budget):
    """(shape, ops, table pass or None) of one stage's pass; the table is the deployment's
    own (loaded with it), transferred when the GPU is another of the same architecture."""
    if dep.pp > 1:
        raise ValueError("a forward pass runs one stage: use stage_deployment() when pp > 1")
    setup = _setup(dep)
    # expert parallelism: each attention group of tp GPUs runs 1/attn_dp of the sequences
    group_batch = np.asarray(batch, float) / setup.attn_dp
    shape = make_shape(group_batch, new_tokens, cached, logits_per_seq, dep.tp, kv_budget, dep.ep)
    ops = _forward_ops(dep.model, shape, setup.w_bytes, setup.kv_bytes)
    kp = setup.kp
    return shape, ops, (price_pass(kp, dep, shape, ops) if kp is not None else None)


def _total(dep: Deployment, shape, op_seconds) -> tuple[np.ndarray, np.ndarray]:
    """(total, overhead) of a pass: the operators plus the fixed costs; an eager prefill
    takes at least its host dispatch time (it overlaps the GPU)."""
    overhead = overhead_time(dep.profile, dep.model.num_layers, shape.batch * shape.logits_per_seq)
    total = overhead + sum(op_seconds)
    if dep.profile.eager_layer_us > 0:
        host = dep.profile.eager_layer_us * 1e-6 * dep.model.num_layers
        total = np.where(shape.new_tokens > DECODE_MAX_TOKENS, np.maximum(total, host), total)
    return total, overhead


def pass_time(
    dep: Deployment, batch, new_tokens, cached=0, logits_per_seq=1, kv_budget=np.inf
) -> np.ndarray:
    """Time of one forward pass over b sequences of q new tokens each (seconds, broadcast).

    One pipeline stage: with pp > 1 pass stage_deployment(dep, stage) (a whole-model pass
    on one stage's GPUs would be silently wrong, so it is refused)."""
    shape, ops, table = _priced_ops(dep, batch, new_tokens, cached, logits_per_seq, kv_budget)
    return _total(dep, shape, _op_seconds(dep, shape, ops, table))[0]


def _op_seconds(dep: Deployment, shape, ops, table) -> list:
    """Each op's time (seconds): the table's where it prices the op, else the measured
    all-reduce, else the roofline (pass_breakdown's times, without the compute/memory split
    of the ops the table prices)."""
    measured = table.times if table is not None else [None] * len(ops)
    setup = _setup(dep)
    seconds = []
    for op, m in zip(ops, measured, strict=True):
        if m is None:
            m = pass_allreduce_seconds(dep, op, shape)
        if m is None:
            n = kernels_per_pass(op.name, dep.model.num_layers)
            m = op_time(
                op, dep.gpu, dep.profile, setup.compute_dtype, dep.mode, n, setup.link
            ).time_s
        seconds.append(m)
    return seconds


def pass_breakdown(
    dep: Deployment, batch, new_tokens, cached=0, logits_per_seq=1, kv_budget=np.inf
) -> PassResult:
    """pass_time's pass operator by operator: each op's time (the table's where it prices
    the op), its roofline compute/memory split (which bound it is), and the notices."""
    shape, ops, table = _priced_ops(dep, batch, new_tokens, cached, logits_per_seq, kv_budget)
    measured = table.times if table is not None else [None] * len(ops)
    times = []
    for op, m in zip(ops, measured, strict=True):
        n = kernels_per_pass(op.name, dep.model.num_layers)
        t = op_time(op, dep.gpu, dep.profile, dep.compute_dtype, dep.mode, n, tp_link(dep))
        if m is None:
            m = pass_allreduce_seconds(dep, op, shape)
            if m is not None:
                t = OpTime(t.name, t.kind, m, t.compute_s, t.memory_s, m)
        times.append(
            t if m is None else OpTime(t.name, t.kind, m, t.compute_s, t.memory_s, t.comm_s)
        )
    total, overhead = _total(dep, shape, [t.time_s for t in times])
    return PassResult(total, overhead, ops, times, table)


def table_skipped(dep: Deployment) -> str:
    """Why an operator table does not price this model (ModelSpec.llama_block)."""
    m = dep.model
    return (
        f"operator table {dep.profile.optable} measures Llama-style blocks; {m.name} "
        f"({m.attention_kind}{', MoE' if m.is_moe else ''}) is priced by roofline with the "
        "profile's efficiencies"
    )


def table_notices(dep: Deployment, batch, prompt_len, output_len) -> list[str]:
    """What the operator table says about these requests: which table (measured, or
    transferred to another GPU) and every clamp outside its measured range."""
    if dep.optable is None:
        return []
    if not dep.model.llama_block:
        return [table_skipped(dep)]
    if kernel_pricing(dep.optable, dep.gpu) is None:
        return [
            f"operator table {dep.profile.optable} does not transfer to {dep.gpu.name} (another "
            "GPU architecture): roofline with the profile's efficiencies"
        ]
    b, p, o = np.broadcast_arrays(*(np.asarray(x, float) for x in (batch, prompt_len, output_len)))
    if dep.pp > 1:  # the last stage holds the lm_head: every op kind appears there
        dep = stage_deployment(dep, pipeline.stages(dep.model.num_layers, dep.pp)[-1])
    pre = pass_breakdown(dep, b, p, 0, 1).notices
    dec = pass_breakdown(dep, b, 1, mean_decode_context(p, o), 1).notices
    return list(dict.fromkeys((*pre, *dec)))


def prefill_time(dep: Deployment, batch, prompt_len, cached=0) -> np.ndarray:
    """TTFT of a batch prefilled in one pass (no chunking), seconds."""
    if dep.pp > 1:
        m, t_stages, transfers = _pipeline_parts(dep, batch, prompt_len, cached, 1, np.inf)
        return pipeline.prefill_latency(t_stages, m, transfers)
    return pass_time(dep, batch, prompt_len, cached, logits_per_seq=1)


def decode_step_time(dep: Deployment, batch, context, new_tokens=1, kv_budget=np.inf) -> np.ndarray:
    """One decode (or verification, new_tokens = gamma+1) step at a given context, seconds."""
    if dep.pp > 1:
        m, t_stages, transfers = _pipeline_parts(
            dep, batch, new_tokens, context, new_tokens, kv_budget
        )
        return pipeline.decode_round(t_stages, m, transfers)
    return pass_time(
        dep, batch, new_tokens, context, logits_per_seq=new_tokens, kv_budget=kv_budget
    )


def stage_deployment(dep: Deployment, stage: pipeline.Stage) -> Deployment:
    """The deployment of one pipeline stage: the model cut to the stage's layers, pp = 1
    (one object per deployment and layer count: prefill and decode share it)."""
    return _stage_deployment(dep, stage.layers)


def _cut(dep: Deployment, layers: int) -> Deployment:
    # ModelSpec.with_layers: one spec per layer count, shared by every deployment of the
    # model (their stages' op lists and tabulations are then found by identity)
    return dep.derived(model=dep.model.with_layers(layers), pp=1)


def _stage_deployment(dep: Deployment, layers: int) -> Deployment:
    known = _stage_deployments(dep)
    return known[layers] if layers in known else _cut(dep, layers)


@by_identity
def _stage_deployments(dep: Deployment) -> dict[int, Deployment]:
    """layers -> the deployment of a stage of that many layers, for each stage of dep."""
    layers = dict.fromkeys(pipeline.stage_layers(dep.model.num_layers, dep.pp))
    return {n: _cut(dep, n) for n in layers}


def last_stage_pass(dep: Deployment, batch) -> tuple[Deployment, np.ndarray]:
    """The pass that stands for a deployment in a per-operator breakdown: the deployment
    itself, or with pp > 1 its last pipeline stage (it holds lm_head) at the largest
    micro-batch (pipeline.micro_batches), the stage every token passes last."""
    if dep.pp == 1:
        return dep, batch
    last = pipeline.stages(dep.model.num_layers, dep.pp)[-1]
    return stage_deployment(dep, last), pipeline.micro_batches(batch, dep.pp)[1]


def stage_time(
    dep: Deployment, stage: pipeline.Stage, batch, new_tokens, cached, logits_per_seq, kv_budget
):
    """One pass of one stage (seconds): its layers' operators and overheads; lm_head and the
    per-sampled-token overhead only on the last stage."""
    sdep = stage_deployment(dep, stage)
    logits = logits_per_seq if stage.last else 0
    shape, ops, table = _priced_ops(sdep, batch, new_tokens, cached, logits, kv_budget)
    seconds = _op_seconds(sdep, shape, ops, table)
    total, overhead = _total(sdep, shape, seconds)
    if stage.last:
        return total
    return overhead + sum(t for op, t in zip(ops, seconds, strict=True) if op.name != "lm_head")


def _stage_pair(sdep: Deployment, batch, new_tokens, cached, logits_per_seq, kv_budget):
    """stage_time of the last stage and of another stage of the same layers (sdep), from one
    pass: the other stage's ops are the last's but lm_head (left out), and only its fixed
    overheads and the table's final norm read the sampled tokens (none there)."""
    shape, ops, table = _priced_ops(sdep, batch, new_tokens, cached, logits_per_seq, kv_budget)
    seconds = _op_seconds(sdep, shape, ops, table)
    last = _total(sdep, shape, seconds)[0]
    zero = zeros_like(shape.logits_per_seq)
    unsampled = shape._replace(logits_per_seq=zero)  # make_shape(..., logits_per_seq=0, ...)
    overhead = overhead_time(sdep.profile, sdep.model.num_layers, unsampled.batch * zero)
    other = []
    for k, (op, t) in enumerate(zip(ops, seconds, strict=True)):
        if op.name == "lm_head":
            continue
        if op.name == "norm_rope_act" and table is not None and table.times[k] is not None:
            t = unsampled_norms(_setup(sdep).kp, sdep, unsampled)
        other.append(t)
    return last, overhead + sum(other)


def _pipeline_parts(dep: Deployment, batch, new_tokens, cached, logits_per_seq, kv_budget):
    """(micro-batches m, stage times of the largest micro-batch, its transfer time); a stage
    of the last stage's layer count comes with it (_stage_pair)."""
    m, b_mb = pipeline.micro_batches(batch, dep.pp)
    times: dict[tuple[int, bool], np.ndarray] = {}  # a stage's time: its layers, and lm_head
    t_stages = []
    stages = pipeline.stages(dep.model.num_layers, dep.pp)
    last = stages[-1].layers
    if any(s.layers == last and not s.last for s in stages):
        times[(last, True)], times[(last, False)] = _stage_pair(
            stage_deployment(dep, stages[-1]), b_mb, new_tokens, cached, logits_per_seq, kv_budget
        )
    for s in stages:
        key = (s.layers, s.last)
        if key not in times:
            times[key] = stage_time(dep, s, b_mb, new_tokens, cached, logits_per_seq, kv_budget)
        t_stages.append(times[key])
    nbytes = pipeline.transfer_bytes(dep.model.hidden_size, b_mb, new_tokens, dep.tp)
    transfers = pipeline.transfers_time(dep.gpu, dep.profile, nbytes, dep.pp, dep.node_crossings)
    return m, t_stages, transfers


def mean_decode_context(prompt_len, output_len) -> np.ndarray:
    return np.asarray(prompt_len, float) + np.asarray(output_len, float) / 2.0


class RequestTimes(NamedTuple):
    """TTFT, mean decode step (TPOT), end-to-end time (seconds) and throughput (tokens/s)."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    throughput_tok_s: np.ndarray


def request_times(dep: Deployment, batch, prompt_len, output_len) -> RequestTimes:
    b, p, o = (np.asarray(x, float) for x in (batch, prompt_len, output_len))
    if b.ndim or p.ndim or o.ndim:
        b, p, o = np.broadcast_arrays(b, p, o)
    else:  # one request shape: float64 scalars (ops.make_shape)
        b, p, o = b[()], p[()], o[()]
    ttft = prefill_time(dep, b, p)
    tpot = decode_step_time(dep, b, mean_decode_context(p, o))
    e2e = ttft + np.maximum(o - 1.0, 0.0) * tpot
    throughput = dep.replicas * b * o / e2e
    return RequestTimes(ttft, tpot, e2e, throughput)
