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
