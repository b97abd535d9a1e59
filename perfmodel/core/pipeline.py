"""Pipeline parallelism: layer split, placement on nodes, micro-batches, bubble, transfers.

A deployment uses num_gpus = tp * pp * dp GPUs on nodes of G = HardwareSpec.max_gpus_per_node.
- Layers: vLLM's split (vllm/distributed/utils.py, get_pp_indices): L // pp layers per
  stage, the remainder L % pp one extra layer each on the stages before the last, counted
  from the second-to-last backwards. The first stage holds the embedding, the last the final
  norm and lm_head (and, with tied embeddings, its own copy of the embedding: vLLM's
  LlamaModel builds embed_tokens on the last rank too). The slowest (largest) stage counts.
- Placement: replicas are packed on consecutive GPUs, stage s of replica r on GPUs
  [r*tp*pp + s*tp, r*tp*pp + (s+1)*tp); TP stays inside a node (tp <= G, tp divides G when
  the deployment spans nodes). A stage boundary crosses nodes when its two stages sit on
  different nodes; the replica with the most crossings paces the deployment.
- Micro-batches: m = min(b, pp) (vLLM runs pp virtual engines, one batch each), of
  ceil(b / m) sequences: the largest micro-batch paces the pipeline.
- Prefill (GPipe schedule, Huang et al. 2019, arXiv:1811.06965): the last micro-batch leaves
  after sum_s t_s + (m - 1) max_s t_s plus its pp - 1 transfers; with equal stages that is
  (m + pp - 1) t_s, of which the bubble is the fraction (pp - 1) / (m + pp - 1).
- Decode: every token of a sequence passes every stage; with m micro-batches in flight one
  round lasts max(sum_s t_s, m max_s t_s) plus the pp - 1 transfers of a micro-batch.
- Transfer between stages: vLLM sends the hidden states and the residual
  (IntermediateTensors), 2 * b * q * d * act_bytes, split over the tp ranks of the stage
  (send_tensor_dict(all_gather_group=tp group); the all-gather on arrival is not modelled):
  intra-node link (link_bandwidth_gbps, link_latency_us) when both stages share a node, else
  the inter-node network (inter_node_bandwidth_gbps, inter_node_latency_us), at the
  profile's link efficiency `comm`; never overlapped with compute.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.specs.dtypes import ACT_BYTES  # hidden states travel in BF16
from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.profile import Profile


class Stage(NamedTuple):
    """One pipeline stage: its layer count and whether it holds the embedding / lm_head."""

    layers: int
    first: bool
    last: bool


def stage_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers per stage, vLLM's split (see module docstring); raises when pp cannot split."""
    if pp < 1:
        raise PerfModelError(f"--pp must be >= 1, got {pp}")
    if pp > num_layers:
        raise PerfModelError(
            f"--pp {pp} cannot split {num_layers} layers (at most one stage per layer)"
        )
    base, extra = divmod(num_layers, pp)
    layers = [base] * pp
    for i in range(2, extra + 2):
        layers[-i] += 1
    return tuple(layers)


@lru_cache(maxsize=256)
def stages(num_layers: int, pp: int) -> tuple[Stage, ...]:
    """All stages in order (pp = 1: one stage holding everything); immutable, so kept."""
    layers = stage_layers(num_layers, pp)
    return tuple(Stage(n, i == 0, i == pp - 1) for i, n in enumerate(layers))


@lru_cache(maxsize=256)
def distinct_stages(num_layers: int, pp: int) -> tuple[Stage, ...]:
    """The distinct stages in order of first appearance (at most four kinds); kept, as
    stages() is: memory checks read them for every pipelined layout of a search."""
    return tuple(dict.fromkeys(stages(num_layers, pp)))


def micro_batches(batch, pp: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, sequences in the largest micro-batch): m = min(b, pp), ceil(b / m) each."""
    b = np.asarray(batch, float)
    m = np.maximum(np.minimum(b, float(pp)), 1.0)
    return m, np.ceil(b / m)


def bubble_fraction(m, pp: int) -> np.ndarray:
    """Idle fraction of a GPipe prefill with m micro-batches on pp equal stages."""
    m = np.asarray(m, float)
    return (pp - 1.0) / (m + pp - 1.0)


def prefill_latency(stage_times: list, m, transfers_s) -> np.ndarray:
    """Time until the last micro-batch leaves the last stage (seconds)."""
    m = np.asarray(m, float)
    return sum(stage_times) + (m - 1.0) * np.maximum.reduce(stage_times) + transfers_s


def decode_round(stage_times: list, m, transfers_s) -> np.ndarray:
    """Time between two tokens of one sequence with m micro-batches in flight (seconds)."""
    m = np.asarray(m, float)
    return np.maximum(sum(stage_times), m * np.maximum.reduce(stage_times)) + transfers_s


@lru_cache(maxsize=1024)
def node_crossings(tp: int, pp: int, dp: int, gpus_per_node: int) -> int:
    """Stage boundaries that cross nodes, for the replica with the most of them (a pure
    function of four integers, kept: every pipelined pass reads it)."""
    worst = 0
    for r in range(dp):
        start = r * tp * pp
        nodes = [(start + s * tp) // gpus_per_node for s in range(pp)]
        worst = max(worst, sum(a != b for a, b in zip(nodes, nodes[1:], strict=False)))
    return worst


def nodes_needed(num_gpus: int, gpus_per_node: int) -> int:
    return -(-int(num_gpus) // int(gpus_per_node))


def transfer_bytes(hidden_size: int, batch, new_tokens, tp) -> np.ndarray:
    """Bytes each GPU of a stage sends to the next stage: 2 * b * q * d * act_bytes / tp."""
    b, q = np.asarray(batch, float), np.asarray(new_tokens, float)
    return 2.0 * b * q * hidden_size * ACT_BYTES / np.asarray(tp, float)


def transfers_time(
    hw: HardwareSpec, profile: Profile, nbytes, pp: int, crossings: int
) -> np.ndarray:
    """The pp - 1 stage-to-stage transfers of one micro-batch, `crossings` of them between
    nodes: each costs latency + bytes / (bandwidth * comm efficiency) (seconds)."""
    nbytes = np.asarray(nbytes, float)
    intra = hw.link_latency_s + nbytes / (max(hw.link_bandwidth, 1.0) * profile.comm)
    inter = hw.inter_node_latency_s + nbytes / (max(hw.inter_node_bandwidth, 1.0) * profile.comm)
    return (pp - 1 - crossings) * intra + crossings * inter
