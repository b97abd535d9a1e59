"""What a ``perfmodel profile`` sweep measures with: the runner, the rows' identity and the
memory check, chosen and checked from the command's options before any work.

The command (perfmodel/cli/commands/profile.py) parses and renders; every rule about which
runner accepts which options lives here. torch and vLLM are imported only when their runner
is chosen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from perfmodel.errors import PerfModelError
from perfmodel.paths import MODEL_CONFIG_DIR
from perfmodel.specs.dtypes import canonical_dtype
from perfmodel.specs.models import load_model
from profiler.memcheck import MemoryCheck
from profiler.sweep import SweepSpec

RUNNERS = ("torch", "vllm")


def config_path_of(spec) -> Path:
    """The config.json a ModelSpec was read from (shipped models: model_configs/<Name>/)."""
    source = Path(str(spec.source)) if spec.source else None
    if source is not None and source.is_file():
        return source
    shipped = MODEL_CONFIG_DIR / spec.name / "config.json"
    if shipped.is_file():
        return shipped
    raise PerfModelError(f"cannot find the config.json of model {spec.name}")


def model_column(spec, config_path: Path) -> str:
    """What the CSV's model column holds: the shipped name, or the config path otherwise,
    so that `perfmodel validate/calibrate --measurements` can load the model again."""
    if (MODEL_CONFIG_DIR / spec.name / "config.json").is_file():
        return spec.name
    return str(Path(config_path).resolve())


def runner_dtype(name: str | None, what: str) -> str | None:
    """The project's dtype names (perfmodel.specs.dtypes), other spellings accepted."""
    if name is None:
        return None
    return canonical_dtype(name, what, ("bf16", "fp16", "fp32", "fp8", "int4"))


@dataclass(frozen=True)
class RunnerOptions:
    """The runner-specific options of ``perfmodel profile`` (names as on the command line)."""

    repeats: int = 3
    warmup: int = 1
    tp: int = 1
    weight_dtype: str | None = None
    kv_dtype: str | None = None
    dtype: str | None = None
    device: str = "auto"
    enforce_eager: bool = True
    chunked_prefill: bool = False
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float = 0.9
    attention_backend: str | None = None
    async_scheduling: bool = False
    threads: int | None = None
    seed: int = 0
    cuda_graph: bool = True
    rope: bool = True
    decode_only: bool = False


@dataclass(frozen=True)
class SweepSetup:
    """A built runner, the identity of its rows and (torch runner) the memory check."""

    runner: object  # profiler.torch_runner.TorchRunner | profiler.vllm_runner.VllmRunner
    spec: SweepSpec
    memory: MemoryCheck | None


def build_sweep(runner: str, model: str, points, options: RunnerOptions) -> SweepSetup:
    """Check the options against the chosen runner (PerfModelError before any work) and
    build it. ``model`` is an alias, name or config.json path; ``points`` the sweep grid."""
    runner = runner.strip().lower()
    if runner not in RUNNERS:
        raise PerfModelError(f"unknown runner '{runner}' (known: {', '.join(RUNNERS)})")
    if not points:
        raise PerfModelError("no sweep points: give --batch, --prompt-len and --output-len")
    if options.repeats < 1 or options.warmup < 0:
        raise PerfModelError("--repeats must be >= 1 and --warmup >= 0")
    spec_model = load_model(model)
    longest = max(p.prompt_len for p in points)
    if longest > spec_model.max_position_embeddings:
        raise PerfModelError(  # before any work: such a sweep ran for minutes, then failed
            f"--prompt-len {longest} exceeds {spec_model.name}'s context window of "
            f"{spec_model.max_position_embeddings} tokens"
        )
    config_path = config_path_of(spec_model)
    weight_dtype = runner_dtype(options.weight_dtype, "--weight-dtype")
    kv_dtype = runner_dtype(options.kv_dtype, "--kv-dtype")
    dtype = runner_dtype(options.dtype, "--dtype")
    if options.decode_only and (runner != "torch" or any(p.output_len < 2 for p in points)):
        raise PerfModelError("--decode-only needs --runner torch and --output-len >= 2")
    if runner == "torch":
        return _torch_setup(spec_model, config_path, weight_dtype, kv_dtype, dtype, options)
    return _vllm_setup(spec_model, config_path, weight_dtype, kv_dtype, dtype, options)


def _torch_setup(spec_model, config_path, weight_dtype, kv_dtype, dtype, options) -> SweepSetup:
    from profiler.torch_runner import TorchRunner

    try:
        import torch  # noqa: F401  (optional heavy dependency: checked before any work)
    except ImportError:
        raise PerfModelError(
            "--runner torch needs PyTorch, which is not installed (pip install torch); "
            "or use --runner vllm on a GPU machine"
        ) from None

    if options.tp != 1:
        raise PerfModelError("the torch runner uses one device; use --runner vllm for --tp > 1")
    compute = dtype or weight_dtype
    if weight_dtype and dtype and weight_dtype != dtype:
        raise PerfModelError("torch runner: --weight-dtype and --dtype differ; give one")
    if kv_dtype and kv_dtype != (compute or kv_dtype):
        raise PerfModelError("torch runner: the KV cache uses the compute dtype (--dtype)")
    compute = compute or kv_dtype
    config = json.loads(config_path.read_text())
    the_runner = TorchRunner(
        config,
        device=options.device,
        dtype=compute,
        repeats=options.repeats,
        warmup=options.warmup,
        seed=options.seed,
        threads=options.threads,
        source=str(config_path),
        cuda_graph=options.cuda_graph,
        decode_only=options.decode_only,
        rope=options.rope,
    )
    the_runner.resolve_device()  # fixes the dtype (bf16 on GPU, fp32 on CPU): part of the key
    spec = SweepSpec(
        model=model_column(spec_model, config_path),
        runner="torch",
        tp=1,
        num_gpus=1,
        weight_dtype=the_runner.dtype,
        kv_dtype=the_runner.dtype,
    )
    return SweepSetup(
        the_runner, spec, MemoryCheck(spec_model, the_runner.dtype, the_runner.device)
    )


def _vllm_setup(spec_model, config_path, weight_dtype, kv_dtype, dtype, options) -> SweepSetup:
    from profiler.vllm_runner import VllmRunner

    weight_dtype = weight_dtype or dtype or "bf16"
    the_runner = VllmRunner(
        config_path,
        vocab_size=spec_model.vocab_size,
        tp=options.tp,
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype or ("bf16" if weight_dtype == "fp8" else weight_dtype),
        repeats=options.repeats,
        warmup=options.warmup,
        enforce_eager=options.enforce_eager,
        enable_chunked_prefill=options.chunked_prefill,
        max_num_seqs=options.max_num_seqs,
        max_num_batched_tokens=options.max_num_batched_tokens,
        gpu_memory_utilization=options.gpu_memory_utilization,
        seed=options.seed,
        attention_backend=options.attention_backend,
        async_scheduling=options.async_scheduling,
    )
    spec = SweepSpec(
        model=model_column(spec_model, config_path),
        runner="vllm",
        tp=options.tp,
        num_gpus=options.tp,
        weight_dtype=the_runner.weight_dtype,
        kv_dtype=the_runner.kv_dtype,
    )
    # vLLM sizes its own cache (gpu_memory_utilization) and reports OOM
    return SweepSetup(the_runner, spec, None)
