"""What a vLLM benchmark file was measured on, and its replays as calibration observations.

Deployment: each field from the caller's option, else from the file's `--metadata KEY=VALUE`
keys (model, gpu, num_gpus, tp or tensor_parallel_size, pp, weight_dtype, kv_dtype,
profile, max_num_seqs, max_num_batched_tokens, enable_chunked_prefill), else: model from the
file's model_id (a known model or alias), num_gpus 1, tp = num_gpus, bf16, the profile
fitted for the GPU, vLLM's server defaults for the scheduler. The GPU has no default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perfmodel.accuracy.observations import Observation
from perfmodel.accuracy.vllm_bench import LatencyResult, ServeResult, read_vllm_result
from perfmodel.accuracy.vllm_replay import (
    EngineSetup,
    Replay,
    replay_latency,
    replay_serve,
    server_defaults,
)
from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.errors import PerfModelError
from perfmodel.specs.models import load_model
from perfmodel.specs.profile import Profile

DEPLOYMENT_KEYS = ("model", "gpu", "num_gpus", "tp", "pp", "weight_dtype", "kv_dtype", "profile")
ENGINE_KEYS = ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill")
MAX_FILES = 200
# what calibrate fits on a serving file: the quantities and the parameters they identify
CALIBRATE_QUANTITIES = ("mean_tpot_ms", "output_throughput", "mean_ttft_ms")
CALIBRATE_PARAMETERS = ("overhead.per_step_us", "overhead.per_token_us")


@dataclass(frozen=True)
class BenchCase:
    """One file with the deployment and scheduler it is replayed on."""

    result: ServeResult | LatencyResult
    dep: Deployment
    setup: EngineSetup
    shape: tuple[int, int, int] | None = None  # latency files: (batch, prompt, output)

    def replay(self, profile: Profile | None = None) -> Replay:
        dep = self.dep if profile is None else _with_profile(self.dep, profile)
        if isinstance(self.result, LatencyResult):
            return replay_latency(self.result, dep, *self.shape, setup=self.setup)
        return replay_serve(self.result, dep, self.setup)


def _with_profile(dep: Deployment, profile: Profile) -> Deployment:
    from dataclasses import replace

    return replace(dep, profile=profile, mode=profile.mode)


def bench_files(path) -> list[Path]:
    """A .json file, or every .json file of a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise PerfModelError(f"{path}: folder holds no .json benchmark results")
        if len(files) > MAX_FILES:
            raise PerfModelError(f"{path}: more than {MAX_FILES} .json files; split the folder")
        return files
    return [path]


def _int(path: str, key: str, value) -> int:
    try:
        out = int(str(value))
    except ValueError:
        raise PerfModelError(
            f"{path}: metadata '{key}' must be an integer, got {value!r}"
        ) from None
    if out < 1:
        raise PerfModelError(f"{path}: metadata '{key}' must be >= 1, got {out}")
    return out


def _model_of(result, given: str | None) -> str:
    """--model, else metadata model, else the file's model_id; a file measured with another
    known model than --model is refused."""
    from_file = result.model_id
    known = None
    if from_file:
        try:
            known = load_model(from_file).name
        except PerfModelError:
            try:
                known = load_model(from_file.rstrip("/").split("/")[-1]).name
            except PerfModelError:
                known = None
    if given:
        mine = load_model(given).name
        if known and known != mine:
            raise PerfModelError(
                f"{result.path}: measured with {from_file} ({known}) but --model is {mine}"
            )
        return given
    if known:
        return known
    raise PerfModelError(
        f"{result.path}: model_id '{from_file}' is not a known model; give --model "
        "(an alias, a name or a config.json path)"
    )


def bench_case(path, options: dict, shape: tuple[int, int, int] | None = None) -> BenchCase:
    """Read a file and resolve its deployment (module docstring); options hold the CLI's
    model, gpu, num_gpus, tp, pp, weight_dtype, kv_dtype, profile, max_num_seqs,
    max_num_batched_tokens (None = not given)."""
    result = read_vllm_result(path)
    meta = result.metadata if isinstance(result, ServeResult) else {}
    if "tensor_parallel_size" in meta and "tp" not in meta:
        meta = {**meta, "tp": meta["tensor_parallel_size"]}
    pick = {
        k: options.get(k) if options.get(k) is not None else meta.get(k) for k in DEPLOYMENT_KEYS
    }
    if not pick["gpu"]:
        raise PerfModelError(
            f"{result.path}: which GPU ran it? give --gpu (or --metadata gpu=... when running "
            "vllm bench serve)"
        )
    num_gpus = _int(result.path, "num_gpus", pick["num_gpus"]) if pick["num_gpus"] else 1
    tp = _int(result.path, "tp", pick["tp"]) if pick["tp"] else None
    pp = _int(result.path, "pp", pick["pp"]) if pick["pp"] else 1
    dep = make_deployment(
        _model_of(result, pick["model"] or None),
        pick["gpu"],
        num_gpus,
        tp,
        pick["weight_dtype"] or "bf16",
        pick["kv_dtype"] or "bf16",
        None,
        pick["profile"] or None,
        pp=pp,
    )
    if isinstance(result, LatencyResult) and shape is None:
        raise PerfModelError(
            f"{result.path}: a vllm bench latency result does not record its batch and "
            "lengths; give --batch, --prompt-len and --output-len as the run used"
        )
    return BenchCase(result, dep, engine_setup(result.path, dep, options, meta), shape)


def engine_setup(path: str, dep: Deployment, options: dict, meta: dict) -> EngineSetup:
    base = server_defaults(dep)
    given = {k: options.get(k) if options.get(k) is not None else meta.get(k) for k in ENGINE_KEYS}
    if all(v is None for v in given.values()):
        return base
    chunked = given["enable_chunked_prefill"]
    chunked = base.chunked_prefill if chunked is None else str(chunked).lower() in ("1", "true")
    return EngineSetup(
        _int(path, "max_num_seqs", given["max_num_seqs"]) if given["max_num_seqs"] else base.max_num_seqs,
        _int(path, "max_num_batched_tokens", given["max_num_batched_tokens"])
        if given["max_num_batched_tokens"] else base.max_num_batched_tokens,
        chunked,
        "given (options or the file's metadata), the rest " + base.source,
    )  # fmt: skip


def observations(cases: list[BenchCase]) -> list[Observation]:
    """One observation per file and compared quantity; each predicts by replaying the file
    with the profile being fitted (one replay per profile, shared by the quantities)."""
    out = []
    for case in cases:
        cache: dict = {}

        def replayed(profile, case=case, cache=cache) -> Replay:
            key = id(profile)
            if key not in cache:
                cache.clear()
                cache[key] = (profile, case.replay(profile))
            return cache[key][1]

        name = Path(case.result.path).name
        quantities = (
            ("avg_latency_s",)
            if isinstance(case.result, LatencyResult)
            else tuple(q for q in CALIBRATE_QUANTITIES if q in case.result.summary)
        )
        measured = (
            {"avg_latency_s": case.result.avg_latency_s}
            if isinstance(case.result, LatencyResult)
            else case.result.summary
        )
        for q in quantities:
            if not measured.get(q, 0) > 0:
                continue
            out.append(
                Observation(
                    table=name,
                    quantity=q,
                    labels=[name],
                    measured=np.array([measured[q]]),
                    predict=lambda prof, q=q, replayed=replayed: np.array(
                        [replayed(prof).predicted[q]]
                    ),
                    profile=case.dep.profile.name,
                    gpu=case.dep.gpu.name,
                )
            )
    return out
