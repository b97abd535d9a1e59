"""An embedded ``vllm.LLM`` with dummy weights, timed from vLLM's own per-request metrics.

Facts this relies on (vllm 0.26 and 0.33, V1 engine; see /work/shared/GPU.md):

- ``LLM(model=<dir holding only config.json>, load_format="dummy", skip_tokenizer_init=True,
  disable_log_stats=False, enable_prefix_caching=False, ...)`` loads no weights and needs no
  tokenizer or network. ``disable_log_stats=False`` is required, else ``RequestOutput.metrics``
  is None.
- Prompts are ``{"prompt_token_ids": [...]}``, fresh random ids for every run (no prefix reuse);
  ``SamplingParams(max_tokens=N, min_tokens=N, ignore_eos=True, detokenize=False)`` makes every
  request generate exactly N tokens with random weights.
- ``RequestOutput.metrics`` is a RequestStateStats: arrival_time (wall clock), queued_ts,
  scheduled_ts, first_token_ts, last_token_ts (monotonic), first_token_latency,
  num_generation_tokens. Prefill = first_token_ts - scheduled_ts; decode per token =
  (last_token_ts - first_token_ts) / (num_generation_tokens - 1).
- The LLM must be created before anything initializes CUDA in this process (this module and
  profiler.fingerprint never touch torch.cuda).
- One-step prefill needs the whole batch queued before the engine schedules. In the default
  multiprocess mode ``LLM.generate`` hands requests to the engine process one at a time and the
  engine steps as soon as the first arrives, so early requests are prefilled alone. The runner
  therefore keeps the engine core in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, read
  by both versions; TP workers still run in their own processes): ``generate`` then adds every
  request before its first ``step()``. A point is ``split``, never ``ok``, when its requests
  were scheduled or got their first tokens in more than one step, batch x prompt exceeds the
  engine's token budget (chunked prefill), or a preemption happened (vllm_metrics.split_note).
- ``async_scheduling`` is on by default in both versions (the next step is launched before the
  first token is stamped); the runner passes ``async_scheduling=False`` and records the value
  the engine reports, with the dtypes it runs (``llm.llm_engine.vllm_config``; a mismatch
  with the requested dtypes is refused, and so is a config.json with a quantization_config).
- After a failed point the sweep calls ``recover`` outside its ``except`` block, the frames
  cleared; a CUDA fault raises ProcessPoisoned instead of a restart that cannot work (the
  sweep goes on in a fresh process).
- Engine arguments valid in both versions: ``attention_backend`` (the ``VLLM_ATTENTION_BACKEND``
  environment variable is read by neither) and ``quantization="fp8_per_tensor"`` (``"fp8"`` is
  native online FP8 in 0.26 but a deprecated alias of ``fp8_per_tensor`` in 0.33).
  ``kv_cache_dtype="auto"`` stores the KV cache in the model dtype; the runner records that
  dtype, not "auto".

``parse_request_metrics`` is a pure function over objects *or* dicts with those field names, so
CI tests it on a synthetic (hand-written) batch, and the runner against a stand-in engine
(tests/vllm_stand_in.py), without vLLM or a GPU; no real-engine run has checked it yet.
``import profiler.vllm_runner`` works without vLLM; running without it raises a
PerfModelError that says how to install it.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError
from profiler.runner import Point, PointResult, ProcessPoisoned, summarize
from profiler.vllm_metrics import (
    counter_total,
    is_cuda_fault,
    parse_request_metrics,
    split_note,
)
from profiler.vllm_metrics import engine_readback as read_engine_config

NOT_INSTALLED = (
    "vLLM is not installed: install the vllm extra on a GPU machine (pip install -e '.[vllm]')"
)
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
IN_PROCESS_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"  # "0": engine core in this process
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mixtral": "MixtralForCausalLM",
}
# --kv-dtype -> (kv_cache_dtype engine argument, the dtype the KV cache is stored in or None
# for "the model dtype": vLLM's "auto" follows the model's dtype)
KV_DTYPES = {"bf16": ("auto", "bfloat16"), "fp16": ("auto", "float16"), "fp8": ("fp8", "fp8")}
# --weight-dtype -> (dtype, quantization): fp8_per_tensor means online per-tensor FP8 of the
# dummy BF16 weights in both 0.26 and 0.33 ("fp8" does not: see the module docstring)
WEIGHT_DTYPES = {
    "bf16": ("bfloat16", None),
    "fp16": ("float16", None),
    "fp8": ("bfloat16", "fp8_per_tensor"),
}


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def require_vllm() -> None:
    if not vllm_available():
        raise PerfModelError(NOT_INSTALLED)


def warmup_point(points: list[Point]) -> Point:
    """The engine warm-up request: one request of the sweep's shortest prompt and output.

    vLLM rejects a prompt that is not shorter than max_model_len; max_model_len is the
    longest prompt + output of the sweep (``engine_args``), and output_len >= 1, so the
    shortest prompt always fits.
    """
    return Point(1, min(p.prompt_len for p in points), min(p.output_len for p in points))


def write_config_dir(config_path: str | Path) -> Path:
    """A temp dir holding only the model's config.json (architectures filled in if missing)."""
    data = json.loads(Path(config_path).read_text())
    if data.get("quantization_config"):
        method = (data["quantization_config"] or {}).get("quant_method", "?")
        raise PerfModelError(
            f"{config_path}: has a quantization_config ({method}): vLLM would follow it, not "
            "--weight-dtype / --kv-dtype, and the rows would name the wrong dtypes; remove it "
            "and choose the dtypes with those options"
        )
    if not data.get("architectures"):
        arch = ARCHITECTURES.get(str(data.get("model_type", "")).lower())
        if arch is None:
            raise PerfModelError(f"{config_path}: cannot tell the vLLM architecture")
        data["architectures"] = [arch]
    folder = Path(tempfile.mkdtemp(prefix="perfmodel-vllm-"))
    (folder / "config.json").write_text(json.dumps(data, indent=2))
    return folder


# ---- the runner --------------------------------------------------------------------------
class VllmRunner:
    """Measures points with one embedded vllm.LLM sized for the whole sweep."""

    name = "vllm"
    uses_gpu = True

    def __init__(
        self,
        config_path: str | Path,
        vocab_size: int,
        tp: int = 1,
        weight_dtype: str = "bf16",
        kv_dtype: str = "bf16",
        repeats: int = 3,
        warmup: int = 1,
        enforce_eager: bool = True,
        enable_chunked_prefill: bool = False,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        gpu_memory_utilization: float = 0.9,
        seed: int = 0,
        attention_backend: str | None = None,
        engine_in_process: bool = True,
        async_scheduling: bool = False,
    ):
        if weight_dtype not in WEIGHT_DTYPES:
            raise PerfModelError(
                f"vLLM runner --weight-dtype '{weight_dtype}' is not supported with dummy weights "
                f"(use {', '.join(WEIGHT_DTYPES)}; int4 needs a quantized checkpoint)"
            )
        if kv_dtype not in KV_DTYPES:
            raise PerfModelError(
                f"vLLM runner --kv-dtype must be one of {', '.join(KV_DTYPES)}, not '{kv_dtype}'"
            )
        model_dtype = WEIGHT_DTYPES[weight_dtype][0]
        if KV_DTYPES[kv_dtype][0] == "auto" and KV_DTYPES[kv_dtype][1] != model_dtype:
            raise PerfModelError(
                f"vLLM keeps a {kv_dtype} KV cache only with {kv_dtype} model weights (its KV "
                f"dtype 'auto' is the model dtype, here {model_dtype}); use --kv-dtype "
                f"{'bf16' if model_dtype == 'bfloat16' else 'fp16'} or fp8"
            )
        if repeats < 1 or warmup < 0:
            raise PerfModelError("--repeats must be >= 1 and --warmup >= 0")
        if not 0.0 < gpu_memory_utilization <= 1.0:
            raise PerfModelError("--gpu-memory-utilization must be in (0, 1]")
        self.config_path = Path(config_path)
        self.vocab_size = vocab_size
        self.tp = tp
        self.weight_dtype, self.kv_dtype = weight_dtype, kv_dtype
        self.repeats, self.warmup = repeats, warmup
        self.enforce_eager = enforce_eager
        self.enable_chunked_prefill = enable_chunked_prefill
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.gpu_memory_utilization = gpu_memory_utilization
        self.seed = seed
        self.attention_backend = attention_backend
        self.engine_in_process = engine_in_process
        self.async_scheduling = async_scheduling
        self.llm = None
        self.engine_starts = 0
        self._engine_args: dict[str, object] = {}
        self._warmup_point: Point | None = None
        self._config_dir: Path | None = None
        self._rng = random.Random(seed)
        require_vllm()

    def settings(self) -> dict[str, object]:
        args = self._engine_args
        out: dict[str, object] = {
            "repeats": self.repeats,
            "warmup": self.warmup,
            "enforce_eager": self.enforce_eager,
            "enable_chunked_prefill": self.enable_chunked_prefill,
            "enable_prefix_caching": False,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "load_format": "dummy",
            "engine_in_process": self.engine_in_process,
            "kv_cache_dtype_used": KV_DTYPES[self.kv_dtype][1],
        }
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:  # InprocClient when the engine core runs in this process
            out["engine_core_client"] = type(core).__name__
        for key in (
            "max_num_seqs",
            "max_num_batched_tokens",
            "max_model_len",
            "quantization",
            "kv_cache_dtype",
            "dtype",
            "attention_backend",
            "async_scheduling",
        ):
            if args.get(key) is not None:
                out[key] = args[key]
        out |= self.engine_readback()  # what the engine runs with, where it says
        if self._warmup_point is not None:
            w = self._warmup_point
            out["warmup_request"] = [w.batch_size, w.prompt_len, w.output_len]
        return out

    def engine_args(self, points: list[Point]) -> dict[str, object]:
        """LLM(...) keyword arguments sized so every point's prefill can be one step."""
        max_len = max(p.prompt_len + p.output_len for p in points)
        max_batch = max(p.batch_size for p in points)
        max_prefill = max(p.batch_size * p.prompt_len for p in points)
        dtype, quantization = WEIGHT_DTYPES[self.weight_dtype]
        batched = self.max_num_batched_tokens or max(max_prefill, max_len)
        args: dict[str, object] = {
            "model": str(self._config_dir) if self._config_dir else "",
            "load_format": "dummy",
            "skip_tokenizer_init": True,
            "disable_log_stats": False,
            "enable_prefix_caching": False,
            "enforce_eager": self.enforce_eager,
            "enable_chunked_prefill": self.enable_chunked_prefill,
            "tensor_parallel_size": self.tp,
            "max_model_len": max_len,
            "max_num_seqs": self.max_num_seqs or max_batch,
            "max_num_batched_tokens": batched,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "kv_cache_dtype": KV_DTYPES[self.kv_dtype][0],
            "dtype": dtype,
            "seed": self.seed,
            # on by default in 0.26 and 0.33: the next step is launched before the first
            # token is stamped, which adds that launch to TTFT
            "async_scheduling": self.async_scheduling,
        }
        if quantization:
            args["quantization"] = quantization
        if self.attention_backend:
            args["attention_backend"] = self.attention_backend
        return args

    def setup(self, points: list[Point]) -> None:
        require_vllm()
        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
        # read by vLLM when the engine is built: "0" queues a whole batch before the first step
        os.environ[IN_PROCESS_ENV] = "0" if self.engine_in_process else "1"
        self._config_dir = write_config_dir(self.config_path)
        self._engine_args = self.engine_args(points)
        self._warmup_point = warmup_point(points)
        self._start_engine()

    def _start_engine(self) -> None:
        """Build the LLM and run one warm-up request (first-call compilation, allocator)."""
        from vllm import LLM  # imported here: LLM() comes before anything touches torch.cuda

        self.engine_starts += 1
        try:  # vllm.envs may have cached the variable if vLLM was imported earlier
            import vllm.envs as vllm_envs

            vllm_envs.VLLM_ENABLE_V1_MULTIPROCESSING = not self.engine_in_process
        except ImportError:
            pass
        try:
            self.llm = LLM(**self._engine_args)
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise PerfModelError(
                f"the vLLM engine did not start ({type(exc).__name__}: {text}); "
                "lower --max-num-seqs / batch x prompt, or raise --tp / --gpu-memory-utilization"
            ) from exc
        self._check_dtypes()
        self._generate(self._warmup_point)

    def engine_readback(self) -> dict[str, object]:
        """The dtypes, scheduler settings and async scheduling the engine reports using."""
        return read_engine_config(self.llm) if self.llm is not None else {}

    def _check_dtypes(self) -> None:
        """Refuse to measure when the engine runs other dtypes than the rows will name."""
        used = self.engine_readback()
        want = {
            "dtype_used": WEIGHT_DTYPES[self.weight_dtype][0],
            "quantization_used": WEIGHT_DTYPES[self.weight_dtype][1],
            "kv_cache_dtype_used": KV_DTYPES[self.kv_dtype][1],
            "async_scheduling_used": self.async_scheduling,
        }
        wrong = [
            f"{k.removesuffix('_used')} {used[k]!r} (asked {v!r})"
            for k, v in want.items()
            if k in used and used[k] != v and not (k == "kv_cache_dtype_used" and v == "fp8"
                                                    and str(used[k]).startswith("fp8"))
        ]  # fmt: skip
        if wrong:
            self._shutdown_engine()
            raise PerfModelError("the vLLM engine runs " + ", ".join(wrong) + ": not measured")

    def _sampling_params(self, output_len: int):
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=output_len,
            min_tokens=output_len,
            ignore_eos=True,
            detokenize=False,
            temperature=0.0,
        )

    def _prompts(self, point: Point) -> list[dict[str, list[int]]]:
        """Fresh random token ids for every request of every run (no prefix reuse)."""
        top = self.vocab_size - 1
        return [
            {"prompt_token_ids": [self._rng.randint(0, top) for _ in range(point.prompt_len)]}
            for _ in range(point.batch_size)
        ]

    def _generate(self, point: Point) -> list[Any]:
        return self.llm.generate(
            self._prompts(point), self._sampling_params(point.output_len), use_tqdm=False
        )

    def _preemptions(self) -> float:
        try:
            return counter_total(self.llm.get_metrics(), "vllm:num_preemptions")
        except Exception:  # metrics API missing or changed: preemption count is optional
            return math.nan

    def measure(self, point: Point) -> PointResult:
        if self.llm is None:
            raise RuntimeError("the vLLM engine is not running (it died and did not restart)")
        before = self._preemptions()
        ttfts, tpots, means, steps, firsts = [], [], [], [], []
        for run in range(self.warmup + self.repeats):
            parsed = parse_request_metrics(self._generate(point))
            if run >= self.warmup:
                ttfts.append(parsed["ttft_batch_s"])
                tpots.append(parsed["tpot_mean_s"])
                means.append(parsed["ttft_mean_s"])
                steps.append(int(parsed["scheduled_steps"]))
                firsts.append(int(parsed["first_token_steps"]))
        result = summarize(ttfts, tpots)
        result.extra["ttft_request_mean_s"] = sum(means) / len(means)
        result.extra["prefill_steps_max"] = max(steps)
        result.extra["first_token_steps_max"] = max(firsts)
        preempted = self._preemptions() - before
        if math.isfinite(preempted):
            result.extra["preemptions"] = int(preempted)
        parsed = {"scheduled_steps": max(steps), "first_token_steps": max(firsts)}
        budget = self.engine_readback().get("max_num_batched_tokens")
        budget = budget or self._engine_args.get("max_num_batched_tokens")
        note = split_note(parsed, point, budget, preempted if math.isfinite(preempted) else 0)
        if note:
            return replace(result, status="split", note=note)
        return result

    def recover(self, error: str = "") -> None:
        """After a failed point, build a fresh engine: a dead engine fails every later call,
        and a live one may still hold the failed point's requests. Called by the sweep after
        the exception is handled (its frames cleared), so the old engine's memory is free. A
        CUDA fault poisons this process's CUDA context: no restart here, ProcessPoisoned
        (the sweep goes on in a fresh process). A restart that fails leaves ``llm`` None, so
        each later point is recorded as an error and the sweep still ends."""
        self._shutdown_engine()
        if is_cuda_fault(error):
            raise ProcessPoisoned(
                f"CUDA fault ({error[:160]}): no new engine can start in this process"
            )
        try:
            self._start_engine()
        except Exception:
            self.llm = None

    def _shutdown_engine(self) -> None:
        llm, self.llm = self.llm, None
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(
            getattr(engine, "engine_core", None), "shutdown", None
        )  # LLMEngine.shutdown where it exists, else its EngineCoreClient's
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # a dead engine may not shut down cleanly
                pass
        del llm
        gc.collect()
        try:  # releases the process group and GPU memory of the in-process engine
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:
            pass

    def close(self) -> None:
        if self.llm is not None:
            self._shutdown_engine()
        if self._config_dir is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None

    @property
    def framework_version(self) -> str:
        from profiler.fingerprint import package_version

        return f"vllm {package_version('vllm')}"
