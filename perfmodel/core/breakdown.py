"""The per-operator breakdown of one forward pass as table rows (predict, the dashboard)."""

from __future__ import annotations

import numpy as np

from perfmodel.core.inference import last_stage_pass, pass_breakdown


def breakdown_rows(dep, batch, new_tokens, cached, logits_per_seq=1) -> list[dict]:
    """Per-operator time, FLOPs, bytes, arithmetic intensity and bound of one pass (the
    first point of broadcast arguments): intensity = FLOPs / HBM bytes; bound = compute when
    the op's compute time >= its memory time, communication for all-reduces.
    With pp > 1: the last pipeline stage, for one micro-batch."""
    dep, batch = last_stage_pass(dep, batch)
    res = pass_breakdown(dep, batch, new_tokens, cached, logits_per_seq)
    rows = []
    for op, t in zip(res.ops, res.times, strict=True):
        flops, mem = float(np.ravel(op.flops)[0]), float(np.ravel(op.mem_bytes)[0])
        if op.kind == "comm":
            bound = "communication"
        else:
            bound = (
                "compute"
                if float(np.ravel(t.compute_s)[0]) >= float(np.ravel(t.memory_s)[0])
                else "memory"
            )
        rows.append(
            {
                "op": op.name,
                "kind": op.kind,
                "time_s": float(np.ravel(t.time_s)[0]),
                "flops": flops,
                "bytes": mem + float(np.ravel(op.comm_bytes)[0]),
                "intensity_flop_per_byte": flops / mem if mem else None,
                "bound": bound,
            }
        )
    rows.append(
        {
            "op": "overhead",
            "kind": "overhead",
            "time_s": float(np.ravel(res.overhead_s)[0]),
            "flops": 0.0,
            "bytes": 0.0,
            "intensity_flop_per_byte": None,
            "bound": "fixed",
        }
    )
    return rows
