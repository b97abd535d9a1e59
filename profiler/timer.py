"""The one timing backend of the profiler (Vidur's cuda_timer and gpt-fast, in small).

``Timer`` synchronizes the device before reading the clock at the start and at the end, so
the time covers all queued kernels. On CPU the synchronize is a no-op. torch is imported only
when a CUDA timer is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _no_sync() -> None:
    return None


class Timer:
    """Wall-clock timer around a block: ``with timer: work(); timer.elapsed_s``.

    ``device`` is "cpu" or a CUDA device string ("cuda", "cuda:0"); the CUDA flavour calls
    ``torch.cuda.synchronize(device)`` before both clock reads.
    """

    def __init__(self, device: str = "cpu", clock: Callable[[], float] = time.perf_counter):
        self.device = str(device)
        self.clock = clock
        self.elapsed_s = float("nan")
        self._start = 0.0
        if self.device.startswith("cuda"):
            import torch

            dev = self.device

            def sync() -> None:
                torch.cuda.synchronize(dev)

            self._sync = sync
        else:
            self._sync = _no_sync

    def synchronize(self) -> None:
        self._sync()

    def __enter__(self) -> Timer:
        self._sync()
        self._start = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.elapsed_s = self.clock() - self._start


def time_graph(fn: Callable[[], object], reps: int) -> float:
    """Mean ms of one launch: ``reps`` launches captured in one CUDA graph, replayed once to
    warm up, then two replays timed with CUDA events: elapsed / (2 * reps), the kernel time
    without launch gaps (../shared/reference/measured/bench_ops.py, t_graph). Used by the
    operator microbenchmarks and the NCCL all-reduce timing alike."""
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
        fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    g.replay()
    g.replay()
    e1.record()
    torch.cuda.synchronize()
    ms = e0.elapsed_time(e1) / (2 * reps)
    del g
    return ms


def time_wall(fn: Callable[[], object], reps: int) -> float:
    """Mean ms of one call on CPU: one warm-up, then ``reps`` calls under perf_counter."""
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) * 1e3 / reps
