"""NCCL all-reduce timing across every visible GPU (one process per GPU).

Ring all-reduce of ``nbytes`` per GPU (torch.distributed, NCCL backend): each rank captures
``reps`` back-to-back all-reduces in one CUDA graph (NCCL is graph-safe), replays once to warm
up, then two replays are timed with CUDA events; rank 0 reports elapsed / (2 * reps) in ms,
the same method as the operator microbenchmarks (``profiler.timer.time_graph``). torch is
imported inside functions.
"""

from __future__ import annotations

import os
import socket

from profiler.timer import time_graph
from profiler.torch_runner import torch_dtype


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, nbytes: int, dtype_name: str, reps: int, out):
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    try:
        dtype = torch_dtype(dtype_name)
        x = torch.ones(max(nbytes // dtype.itemsize, 1), device="cuda", dtype=dtype)
        dist.all_reduce(x)  # NCCL communicator set-up outside the graph
        torch.cuda.synchronize()
        ms = time_graph(lambda: dist.all_reduce(x), reps)
        if rank == 0:
            out.put(ms)
    finally:
        dist.destroy_process_group()


def allreduce_ms(nbytes: int, dtype_name: str, reps: int) -> tuple[float, int, str]:
    """(ms per all-reduce of ``nbytes`` per GPU over all visible GPUs, reps, timing)."""
    import torch
    import torch.multiprocessing as mp

    world = torch.cuda.device_count()
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(
        _worker,
        args=(world, _free_port(), nbytes, dtype_name, reps, queue),
        nprocs=world,
        join=True,
        start_method="spawn",
    )
    return float(queue.get()), reps, f"cuda_graph,nccl,{world}gpu"
