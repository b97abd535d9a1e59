"""Tensor-parallel all-reduce time per call: measured where a table has it, else analytical.

Three cases, each labelled (`AllReduceBasis.label`):
- measured (intra-node): an operator table's `allreduce` rows (GPU count g, message bytes S,
  time of one all-reduce; specs/optables.py). Per measured g, log t is interpolated linearly
  in log S; below the smallest measured S the smallest time is held (the latency floor);
  above the largest the edge bandwidth is held (t proportional to S). A GPU count not
  measured takes the nearest measured count above it (a ring over more GPUs is never
  faster), else the largest, scaled by the ring's traffic factor (g-1)/g. A table prices the
  all-reduce only on its own GPU or on a GPU with the same intra-node link (kind, bandwidth,
  peer-to-peer): the collective is a property of the link, not of the chip.
- host-staged (no peer-to-peer: GeForce cards, whose driver exposes no P2P between GPUs; see
  hardware_specs/rtx4090.yaml): NCCL's ring moves every chunk GPU -> pinned host memory ->
  GPU, so each of the 2(g-1) ring steps crosses PCIe twice (device-to-host, then
  host-to-device) and pays a step latency:
      t = 2(g-1) * a_step + 2 * [2(g-1)/g * S] / (B * e)
  with B the PCIe bandwidth per direction, e the profile's comm efficiency and a_step the
  measured step latency of the hardware YAML (allreduce_step_latency_us) or, absent, the
  profile's per-call latency spread over the steps. Where a GPU of the same family on the
  same kind of link has a measured table (RTX 4090: the L40S, PCIe 4.0 with P2P), that
  measurement is a floor: peer-to-peer only helps. On the L40S's 8-GPU box it is far below
  the line rate (busbw ~2 GB/s at 8 GPUs, ~19 GB/s at 2), so the floor binds there.
- link (no table): t = a_call + 2(g-1)/g * S / (B * e) (ring all-reduce; Patarasuk & Yuan
  2009), a_call the profile's comm_latency_us. Inter-node links always take this form with
  the inter-node bandwidth and latency of the hardware YAML: analytical, and said so.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import sorted_unique
from perfmodel.core.identity_memo import by_identity
from perfmodel.core.ops import COMM
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.optables import OpTable, load_optable, stored_extra


class AllReduceCurves(NamedTuple):
    """log message bytes and log seconds per measured GPU count of one table."""

    table: str
    gpu: str
    framework: str
    by_gpus: dict  # g -> (log S sorted, log t)


def allreduce_curves(table: OpTable) -> AllReduceCurves | None:
    """The table's all-reduce curves (None: the table has no all-reduce rows)."""
    idx = table.rows("allreduce")
    if not len(idx):
        return None
    v = table.values
    g, s, t = v["num_gpus"][idx], v["bytes"][idx], v["time_s"][idx]
    by = {}
    for count in sorted_unique(g):
        sel = g == count
        xs, inv = sorted_unique(np.log(s[sel]), return_inverse=True)
        ys = np.bincount(inv, weights=np.log(t[sel])) / np.bincount(inv)
        by[int(count)] = (xs, ys)
    return _table_allreduce_curves(table, by)


def _table_allreduce_curves(table: OpTable, by_gpus: dict) -> AllReduceCurves:
    """AllReduceCurves of `table` from its curves per GPU count (built or stored)."""
    framework = f"{table.framework} {table.framework_version}".strip()
    return AllReduceCurves(table.name, table.gpu, framework, by_gpus)


def same_link(a: HardwareSpec, b: HardwareSpec) -> bool:
    """Whether an all-reduce measured on GPU `a` describes GPU `b`: same intra-node link."""
    link_a = (a.architecture, a.link_kind, a.link_bandwidth_gbps, a.peer_to_peer)
    link_b = (b.architecture, b.link_kind, b.link_bandwidth_gbps, b.peer_to_peer)
    return a.name == b.name or link_a == link_b


def table_applies(curves: AllReduceCurves | None, hw: HardwareSpec) -> bool:
    return curves is not None and same_link(resolve_gpu(curves.gpu), hw)


def measured_allreduce(curves: AllReduceCurves, g: int, message_bytes) -> np.ndarray:
    """Seconds of one all-reduce of `message_bytes` (array) over g GPUs, from the table."""
    counts = sorted(curves.by_gpus)
    above = [c for c in counts if c >= g]
    use = above[0] if above else counts[-1]
    xs, ys = curves.by_gpus[use]
    if isinstance(message_bytes, np.float64):  # one message (a pass of one shape)
        x = np.log(max(message_bytes, 1.0))  # np.maximum's selection, on float64 scalars
        t = np.exp(np.interp(x, xs, ys))
        if x > xs[-1]:
            t = np.exp(ys[-1] + x - xs[-1])  # edge bandwidth held
        return t * ((g - 1) / g) / ((use - 1) / use) if use != g else t
    x = np.log(np.maximum(np.asarray(message_bytes, float), 1.0))
    t = np.exp(np.interp(x, xs, ys))
    t = np.where(x > xs[-1], np.exp(ys[-1] + x - xs[-1]), t)  # edge bandwidth held
    if use != g:
        t = t * ((g - 1) / g) / ((use - 1) / use)
    return t


def host_staged_allreduce(
    g: int, message_bytes, link_bw: float, eff: float, step_latency_s: float
) -> np.ndarray:
    """Seconds of one ring all-reduce staged through host memory (no peer-to-peer)."""
    s = np.asarray(message_bytes, float)
    steps = 2 * (g - 1)
    return steps * step_latency_s + 2.0 * (2.0 * (g - 1) / g * s) / (link_bw * eff)


def link_allreduce(g: int, message_bytes, link_bw: float, eff: float, call_latency_s: float):
    """Seconds of one ring all-reduce over a link of `link_bw` B/s per direction."""
    s = np.asarray(message_bytes, float)
    return call_latency_s + 2.0 * (g - 1) / g * s / (link_bw * eff)


class AllReduceBasis(NamedTuple):
    """How the TP all-reduce of one deployment is priced (and its label)."""

    kind: str  # measured | host-staged | link
    label: str
    curves: AllReduceCurves | None = None


def allreduce_basis(curves: AllReduceCurves | None, hw: HardwareSpec) -> AllReduceBasis:
    """The pricing rule of the TP all-reduce inside one node of `hw`."""
    if table_applies(curves, hw):
        src = "" if curves.gpu == hw.name else f", transferred from {curves.gpu} (same link)"
        return AllReduceBasis(
            "measured",
            f"measured: operator table {curves.table} ({curves.framework}, GPU count x message "
            f"size){src}",
            curves,
        )
    if not hw.peer_to_peer:
        label = (
            f"analytical: ring through host memory over {hw.link_kind} (no peer-to-peer on "
            f"{hw.name}), {hw.link_bandwidth_gbps:g} GB/s per direction"
        )
        floor = None
        if curves is not None:
            src = resolve_gpu(curves.gpu)
            if src.architecture == hw.architecture and src.link_kind == hw.link_kind:
                floor = curves
                label += (
                    f"; never faster than measured on {src.name} (operator table "
                    f"{curves.table}, {curves.framework}: same {src.link_kind} link, with "
                    "peer-to-peer)"
                )
        return AllReduceBasis("host-staged", label, floor)
    return AllReduceBasis(
        "link",
        f"analytical: ring over {hw.link_kind} {hw.link_bandwidth_gbps:g} GB/s + per-call "
        "latency (no measured all-reduce for this GPU)",
    )


def allreduce_seconds(
    basis: AllReduceBasis,
    hw: HardwareSpec,
    g: int,
    message_bytes,
    eff: float,
    call_latency_s: float,
) -> np.ndarray:
    """Seconds of one TP all-reduce of `message_bytes` over g GPUs of one node."""
    if g <= 1:
        return np.zeros_like(np.asarray(message_bytes, float))
    if basis.kind == "measured":
        return measured_allreduce(basis.curves, g, message_bytes)
    if basis.kind == "host-staged":
        step = (
            hw.allreduce_step_latency_us * 1e-6
            if hw.allreduce_step_latency_us is not None
            else call_latency_s / (2 * (g - 1))
        )
        t = host_staged_allreduce(g, message_bytes, hw.link_bandwidth, eff, step)
        if basis.curves is not None:  # a GPU of the family with P2P: a measured lower bound
            t = np.maximum(t, measured_allreduce(basis.curves, g, message_bytes))
        return t
    return link_allreduce(g, message_bytes, hw.link_bandwidth, eff, call_latency_s)


def encode_allreduce(table: OpTable) -> tuple[list[int], dict[str, np.ndarray]]:
    """The measured GPU counts and the arrays (allreduce.G.x: log S, allreduce.G.y: log t) of
    the table's all-reduce curves, stored in its binary copy (core/optable/stored.py)."""
    curves = allreduce_curves(table)
    if curves is None:
        return [], {}
    arrays = {}
    for g, (xs, ys) in curves.by_gpus.items():
        arrays[f"allreduce.{g}.x"], arrays[f"allreduce.{g}.y"] = xs, ys
    return list(curves.by_gpus), arrays


@lru_cache(maxsize=16)
def _table_curves(name: str) -> AllReduceCurves | None:
    """A table's all-reduce curves: a shipped table's from its current binary copy (views,
    the built values to the last bit), else built from its rows."""
    table = load_optable(name)
    extra = stored_extra(name)
    if extra is None or "allreduce" not in extra[0]:
        return allreduce_curves(table)
    counts, arrays = extra[0]["allreduce"], extra[1]
    if not counts:
        return None
    by = {g: (arrays[f"allreduce.{g}.x"], arrays[f"allreduce.{g}.y"]) for g in counts}
    return _table_allreduce_curves(table, by)


def deployment_basis(dep) -> AllReduceBasis:
    """The TP all-reduce rule of a deployment: its profile's table, its GPU's link."""
    return _profile_basis(dep.profile, dep.gpu)


@by_identity
def _profile_basis(profile, hw: HardwareSpec) -> AllReduceBasis:
    curves = _table_curves(profile.optable) if profile.optable else None
    return allreduce_basis(curves, hw)


ACT_BYTES = 2.0  # BF16 activations all-reduced between the TP ranks


def pass_allreduce_seconds(dep, op, shape) -> np.ndarray | None:
    """Time of a pass's TP all-reduce operator (ops.allreduce_op: 2 calls per layer, each
    over the pass's tokens x hidden size) by the deployment's measured or host-staged rule;
    None: the link formula of cost.op_time prices it (no table, peer-to-peer link, or a TP
    group across nodes, asked for: the inter-node network bounds it, core.deployment.tp_link;
    a table measured inside one node would price it far too fast)."""
    if op.kind != COMM:
        return None
    spans_nodes, basis = _deployment_rule(dep)
    if spans_nodes or basis.kind == "link":
        return None
    latency = dep.profile.comm_latency_us * 1e-6
    if np.ndim(shape.tp) == 0 and np.ndim(op.comm_calls) == 0:  # one pass, one TP degree
        message = np.asarray(shape.batch * shape.new_tokens, float) * dep.model.hidden_size
        one = allreduce_seconds(
            basis, dep.gpu, int(shape.tp), message * ACT_BYTES, dep.profile.comm, latency
        )
        return np.asarray(op.comm_calls, float) * np.asarray(one, float)
    tp = np.broadcast_to(np.asarray(shape.tp, float), np.shape(op.comm_calls))
    message = np.broadcast_to(
        np.asarray(shape.batch * shape.new_tokens, float) * dep.model.hidden_size * ACT_BYTES,
        tp.shape,
    )
    per_call = np.zeros(tp.shape)
    for g in sorted_unique(tp):
        sel = tp == g
        per_call[sel] = allreduce_seconds(
            basis, dep.gpu, int(g), message[sel], dep.profile.comm, latency
        )
    return np.asarray(op.comm_calls, float) * per_call


@by_identity
def _deployment_rule(dep) -> tuple[bool, AllReduceBasis]:
    """(TP group spans nodes, all-reduce basis) of a deployment, once per deployment."""
    return dep.tp_spans_nodes, deployment_basis(dep)
