"""A stand-in for the ``vllm`` module: enough of ``LLM`` and ``SamplingParams`` to run the vLLM
runner without vLLM or a GPU, and honest about what the real engine does to a batch.

What it copies from vLLM's V1 engine (0.26 / 0.33; see profiler/vllm_runner.py):
- ``LLM(**kwargs)`` accepts only ``EngineArgs`` field names and ``SamplingParams(**kwargs)``
  only its parameters, both listed in fixtures/profiler/vllm_api_names.json with where they
  were read; anything else is a TypeError, as a dataclass / msgspec struct raises.
- ``VLLM_ENABLE_V1_MULTIPROCESSING`` is read when the LLM is built. Unset or "1" (vLLM's
  default, the engine core in another process): the engine steps as soon as the first request
  reaches it, so ``generate`` hands it requests one per engine step. "0" (engine core in this
  process): ``generate`` adds every request before the first ``step()``. ``llm_engine``'s
  ``engine_core`` is named like vLLM's client for each mode (InprocClient / SyncMPClient).
- A scheduler as V1's: running requests first (one decode token each, then the rest of a
  chunked prompt), then waiting requests in order while ``max_num_seqs`` and the
  ``max_num_batched_tokens`` budget allow; with ``enable_chunked_prefill`` a prompt longer
  than the budget left is split over steps (without it, it waits). Every request first
  scheduled in a step gets that step's ``scheduled_ts``; a request gets ``first_token_ts``
  from the step that computes its last prompt token.
- Preemption: with ``kv_tokens`` set, a decode step that would hold more tokens than that
  preempts the newest running request (its progress dropped, back to the front of the
  queue) and counts it in ``vllm:num_preemptions``.
- Async scheduling (``async_scheduling`` unset or True, vLLM's default): the first token is
  stamped only after the next step has been launched (ASYNC_LAUNCH_S later) when the request
  wants more than one token.
- ``llm_engine.vllm_config`` reports model_config.dtype / quantization, cache_config.cache_dtype
  and scheduler_config (max_num_seqs, max_num_batched_tokens, async_scheduling), as vLLM's.
- Step time: 10 us per prefilled token plus 2 ms when the step decodes any request, on its own
  clock (no wall-clock reads).
- A prompt not shorter than ``max_model_len`` is refused (ValueError), as the input processor
  does.
- ``crash_at=N``: the N-th ``generate`` call of the module raises a CUDA illegal memory access
  and leaves that engine dead (every later call raises ``EngineDeadError``); the fault poisons
  the whole process, as a CUDA context does: no new ``LLM`` starts in it (``reset_process()``
  stands for a fresh process). ``crash_at`` with ``cuda=False`` raises a plain engine error
  instead, after which a new ``LLM`` works.
- Memory: each ``generate`` call holds its KV tensors in a local of its frame; a new ``LLM``
  refuses to start while any are alive (vLLM's free-memory check at startup), so a restart
  from inside the ``except`` block, where the traceback still holds that frame, fails.
"""

from __future__ import annotations

import gc
import json
import os
import types
import weakref
from collections import deque
from pathlib import Path
from types import SimpleNamespace

API_NAMES = json.loads(
    (Path(__file__).parent / "fixtures" / "profiler" / "vllm_api_names.json").read_text()
)
ENGINE_ARGS = frozenset(API_NAMES["engine_args"]["fields"])
SAMPLING_PARAMS = frozenset(API_NAMES["sampling_params"]["parameters"])
PREFILL_S_PER_TOKEN = 1e-5
DECODE_STEP_S = 2e-3
IDLE_STEP_S = 1e-4  # a step with nothing to run, waiting for the next request to arrive
ASYNC_LAUNCH_S = 5e-4  # launching the next step before the first token is stamped
CUDA_FAULT = "CUDA error: an illegal memory access was encountered"
PROCESS = {"cuda_poisoned": False}  # per process, as a CUDA context is
KV_BLOCKS: weakref.WeakSet = weakref.WeakSet()  # live KV tensors of every engine


class _KVTensors:
    """A step's KV tensors: alive while anything (a traceback's frame) refers to them."""


def reset_process() -> None:
    """A fresh process: its CUDA context is clean again."""
    PROCESS["cuda_poisoned"] = False


class EngineDeadError(RuntimeError):
    """Raised by every call to an engine after it crashed (vllm.v1.engine.exceptions)."""


def _refuse_unknown(kind: str, given: dict, known: frozenset) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"{kind}.__init__() got an unexpected keyword argument '{unknown[0]}'")


class SamplingParams:
    def __init__(self, **kwargs):
        _refuse_unknown("SamplingParams", kwargs, SAMPLING_PARAMS)
        self.max_tokens = 16
        self.min_tokens = 0
        self.__dict__.update(kwargs)


class _Request:
    def __init__(self, request_id: int, prompt_len: int, max_tokens: int):
        self.request_id, self.prompt_len, self.max_tokens = request_id, prompt_len, max_tokens
        self.queued_ts = self.scheduled_ts = self.first_token_ts = self.last_token_ts = 0.0
        self.generated = 0
        self.computed = 0  # prompt tokens computed so far


class InprocClient:
    """Named as vLLM's EngineCoreClient for an engine core in this process."""


class SyncMPClient:
    """Named as vLLM's EngineCoreClient for an engine core in another process."""


class _Engine(SimpleNamespace):
    def shutdown(self):
        self.shut_down = True


def make_vllm(
    crash_at: int | None = None, kv_tokens: int | None = None, cuda: bool = True
) -> types.ModuleType:
    """A fresh ``vllm`` stand-in module; ``module.LLM.instances`` lists the engines built."""
    state = {"generate_calls": 0, "preemptions": 0}

    class LLM:
        instances: list[LLM] = []

        def __init__(self, **kwargs):
            _refuse_unknown("EngineArgs", kwargs, ENGINE_ARGS)
            if PROCESS["cuda_poisoned"]:
                raise RuntimeError(CUDA_FAULT)  # the CUDA context of this process is gone
            gc.collect()
            if len(KV_BLOCKS):  # vLLM's startup check: free memory below the utilization asked
                raise ValueError(
                    "Free memory on device is less than desired GPU memory utilization: "
                    f"{len(KV_BLOCKS)} KV cache(s) of another engine still allocated"
                )
            self.kwargs = kwargs
            self.in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"
            self.max_model_len = int(kwargs["max_model_len"])
            self.max_num_seqs = int(kwargs.get("max_num_seqs") or 256)
            self.token_budget = int(kwargs.get("max_num_batched_tokens") or 8192)
            self.clock = 1000.0
            self.dead = False
            self.prompts: list[list[int]] = []
            self.params = None
            self.chunked = bool(kwargs.get("enable_chunked_prefill"))
            self.async_scheduling = kwargs.get("async_scheduling") is not False
            core = InprocClient() if self.in_process else SyncMPClient()
            dtype = kwargs.get("dtype") or "bfloat16"
            config = SimpleNamespace(
                model_config=SimpleNamespace(
                    dtype=f"torch.{dtype}", quantization=kwargs.get("quantization")
                ),
                cache_config=SimpleNamespace(cache_dtype=kwargs.get("kv_cache_dtype") or "auto"),
                scheduler_config=SimpleNamespace(
                    max_num_seqs=self.max_num_seqs,
                    max_num_batched_tokens=self.token_budget,
                    async_scheduling=self.async_scheduling,
                ),
            )
            self.llm_engine = _Engine(shut_down=False, engine_core=core, vllm_config=config)
            self._next_id = 0
            LLM.instances.append(self)

        def generate(self, prompts, sampling_params, use_tqdm=True):
            if self.dead:
                raise EngineDeadError("EngineCore encountered an issue. See stack trace above.")
            state["generate_calls"] += 1
            kv = _KVTensors()  # held by this frame: a traceback through it keeps it alive
            KV_BLOCKS.add(kv)
            if crash_at is not None and state["generate_calls"] == crash_at:
                self.dead = True
                if cuda:
                    PROCESS["cuda_poisoned"] = True
                    raise RuntimeError(CUDA_FAULT)
                raise RuntimeError("engine core failed (a Python error in the scheduler)")
            for p in prompts:
                n = len(p["prompt_token_ids"])
                if n >= self.max_model_len:
                    raise ValueError(
                        f"The decoder prompt (length {n}) is longer than the maximum model "
                        f"length of {self.max_model_len}."
                    )
            self.params = sampling_params
            requests = []
            for p in prompts:
                self.prompts.append(p["prompt_token_ids"])
                requests.append(
                    _Request(self._next_id, len(p["prompt_token_ids"]), sampling_params.max_tokens)
                )
                self._next_id += 1
            self._run(requests)
            self.clock += 1.0
            return [self._output(r) for r in requests]

        def _run(self, requests: list[_Request]) -> None:
            """Engine steps until every request has all its tokens (module docstring)."""
            arriving = deque(requests)
            waiting: deque[_Request] = deque()
            running: list[_Request] = []
            while arriving or waiting or running:
                for _ in range(len(arriving) if self.in_process else min(1, len(arriving))):
                    request = arriving.popleft()
                    request.queued_ts = self.clock
                    waiting.append(request)
                self._preempt(running, waiting)
                budget = self.token_budget
                chunks: list[tuple[_Request, int]] = []
                decodes: list[_Request] = []
                for r in running:
                    left = r.prompt_len - r.computed
                    if budget <= 0:
                        break
                    if left <= 0:
                        decodes.append(r)
                        budget -= 1
                    elif self.chunked or left <= budget:
                        chunks.append((r, min(left, budget)))
                        budget -= min(left, budget)
                while waiting and len(running) < self.max_num_seqs and budget > 0:
                    r = waiting[0]
                    if not self.chunked and r.prompt_len > budget:
                        break
                    waiting.popleft()
                    running.append(r)
                    r.scheduled_ts = r.scheduled_ts or self.clock
                    chunks.append((r, min(r.prompt_len, budget)))
                    budget -= min(r.prompt_len, budget)
                step_s = PREFILL_S_PER_TOKEN * sum(k for _, k in chunks)
                step_s += DECODE_STEP_S if decodes else 0.0
                self.clock += step_s or IDLE_STEP_S
                for r, k in chunks:
                    r.computed += k
                    if r.computed >= r.prompt_len:
                        r.generated = 1
                        r.first_token_ts = self.clock
                        if self.async_scheduling and r.max_tokens > 1:
                            r.first_token_ts += ASYNC_LAUNCH_S  # the next step launched first
                        r.last_token_ts = self.clock
                for r in decodes:
                    r.generated += 1
                    r.last_token_ts = self.clock
                running = [
                    r for r in running if r.computed < r.prompt_len or r.generated < r.max_tokens
                ]

        def _preempt(self, running: list[_Request], waiting: deque) -> None:
            """Drop the newest running requests while the KV cache cannot hold one more token
            for each (V1 preempts by recompute)."""
            while kv_tokens is not None and len(running) > 1:
                held = sum(r.computed + r.generated + 1 for r in running)
                if held <= kv_tokens:
                    return
                victim = running.pop()
                victim.computed = victim.generated = 0
                waiting.appendleft(victim)
                state["preemptions"] += 1

        def _output(self, r: _Request) -> SimpleNamespace:
            stats = SimpleNamespace(
                arrival_time=1.7e9,
                queued_ts=r.queued_ts,
                scheduled_ts=r.scheduled_ts,
                first_token_ts=r.first_token_ts,
                last_token_ts=r.last_token_ts,
                first_token_latency=r.first_token_ts - r.queued_ts,
                num_generation_tokens=r.generated,
            )
            return SimpleNamespace(request_id=str(r.request_id), finished=True, metrics=stats)

        def get_metrics(self):
            if self.dead:
                raise EngineDeadError("EngineCore encountered an issue. See stack trace above.")
            return [SimpleNamespace(name="vllm:num_preemptions", value=state["preemptions"])]

    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = SamplingParams
    module.__version__ = "stand-in"
    return module
