"""What a vLLM benchmark file was measured on, and its replays as calibration observations.

Deployment: each field from the caller's option, else from the file's `--metadata KEY=VALUE`
keys (model, gpu, num_gpus, tp or tensor_parallel_size, pp, weight_dtype, kv_dtype,
profile, max_num_seqs, max_num_batched_tokens, enable_chunked_prefill), else: model from the
file's model_id (a known model or alias), num_gpus 1, tp = num_gpus, bf16, the profile
fitted for the GPU, vLLM's server defaults for the scheduler. The GPU has no default.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perfmodel.accuracy.observations import Observation
from perfmodel.accuracy.vllm_bench import LatencyResult, ServeResult, read_vllm_result
from perfmodel.accuracy.vllm_replay import (
    EngineSetup,
    Replay,
    latency_defaults,
    replay_latency,
    replay_serve,
    server_defaults,
)
from perfmodel.core.bench_options import BenchOptions
from perfmodel.core.deployment import Deployment
from perfmodel.core.options import DeploymentOptions
from perfmodel.errors import PerfModelError
from perfmodel.specs.models import load_model
from perfmodel.specs.profile import PARAMETERS, Profile

DEPLOYMENT_KEYS = ("model", "gpu", "num_gpus", "tp", "pp", "weight_dtype", "kv_dtype", "profile")
ENGINE_KEYS = ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill")
MAX_FILES = 200
# what calibrate fits on a serving file: the quantities and the parameters they identify
CALIBRATE_QUANTITIES = ("mean_tpot_ms", "output_throughput")
CALIBRATE_PARAMETERS = ("overhead.per_step_us", "overhead.per_token_us")
BATCH_SPAN = 4.0  # per_token_us is told apart from per_step_us only over this batch range


def mean_decode_batch(result) -> float | None:
    """Sequences decoding at once, by Little's law: output tokens/s x seconds per token."""
    summary = getattr(result, "summary", {})
    if summary.get("output_throughput", 0) > 0 and summary.get("mean_tpot_ms", 0) > 0:
        return summary["output_throughput"] * summary["mean_tpot_ms"] / 1000
    return None


def identified_parameters(cases: list[BenchCase]) -> tuple[tuple[str, ...], str]:
    """The default parameters to fit, and why per_token_us is left out: a per-token cost
    and a per-step cost are one number at a fixed batch; only batches spanning BATCH_SPAN
    (from the files' mean decode batch) tell them apart."""
    batches = [b for b in (mean_decode_batch(c.result) for c in cases) if b]
    if batches and max(batches) >= BATCH_SPAN * min(batches):
        return CALIBRATE_PARAMETERS, ""
    span = f"{min(batches):.1f}-{max(batches):.1f}" if batches else "unknown"
    return CALIBRATE_PARAMETERS[:1], (
        f"overhead.per_token_us: the files' mean decode batch spans only {span} "
        f"(< x{BATCH_SPAN:g}): at one batch it is one number with per_step_us"
    )


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


def bench_case(path, options: BenchOptions) -> BenchCase:
    """Read a file and resolve its deployment (module docstring) from the user's options
    (None = not given) and the file's metadata."""
    result = read_vllm_result(path)
    meta = result.metadata if isinstance(result, ServeResult) else {}
    if "tensor_parallel_size" in meta and "tp" not in meta:
        meta = {**meta, "tp": meta["tensor_parallel_size"]}
    pick = _given_else_file(options, meta, DEPLOYMENT_KEYS)
    if not pick["gpu"]:
        raise PerfModelError(
            f"{result.path}: which GPU ran it? give --gpu (or --metadata gpu=... when running "
            "vllm bench serve)"
        )
    num_gpus = _int(result.path, "num_gpus", pick["num_gpus"]) if pick["num_gpus"] else 1
    tp = _int(result.path, "tp", pick["tp"]) if pick["tp"] else None
    pp = _int(result.path, "pp", pick["pp"]) if pick["pp"] else 1
    dep = DeploymentOptions(
        model=_model_of(result, pick["model"] or None),
        gpu=pick["gpu"],
        num_gpus=num_gpus,
        tp=tp,
        pp=pp,
        weight_dtype=pick["weight_dtype"] or "bf16",
        kv_dtype=pick["kv_dtype"] or "bf16",
        profile=pick["profile"] or None,
    ).deployment()
    shape = options.shape
    if isinstance(result, LatencyResult) and shape is None:
        raise PerfModelError(
            f"{result.path}: a vllm bench latency result does not record its batch and "
            "lengths; give --batch, --prompt-len and --output-len as the run used"
        )
    setup = engine_setup(result.path, dep, options, meta, isinstance(result, LatencyResult))
    return BenchCase(result, dep, setup, shape)


def _given_else_file(options: BenchOptions, meta: dict, keys) -> dict:
    """Each key from the user's option, else from the file's metadata (None: neither)."""
    return {k: meta.get(k) if options.given(k) is None else options.given(k) for k in keys}


def engine_setup(
    path: str, dep: Deployment, options: BenchOptions, meta: dict, latency: bool = False
) -> EngineSetup:
    """The scheduler a file is replayed on: what the options or the file's metadata give,
    the rest from vLLM's defaults (a `vllm bench latency` file: the offline LLM class's,
    replay_latency's own; a serving file: the server's)."""
    base = latency_defaults(dep) if latency else server_defaults(dep)
    given = _given_else_file(options, meta, ENGINE_KEYS)
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


def lattice_step(parameter: str) -> float:
    """Spacing of the calibration lattice: 5 us for an overhead, 0.005 for an efficiency."""
    return 0.005 if parameter.startswith("efficiency.") else 5.0


def observations(cases: list[BenchCase], fitted: tuple[str, ...] = ()) -> list[Observation]:
    """One observation per file and compared quantity, predicting by replaying the file with
    the profile being fitted. A replay is piecewise constant at fine scale in the fitted
    parameters (an arrival lands before or after a step boundary), so a finite-difference
    Jacobian of it is noise; the observations therefore interpolate replays done on a lattice
    of the `fitted` parameters (lattice_step apart, multilinear): continuous, and the replays
    at the lattice points are cached and shared by every quantity of a file."""
    out = []
    for case in cases:
        replay_at = _lattice_replay(case, tuple(fitted))
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
                    predict=lambda prof, q=q, replay_at=replay_at: np.array([replay_at(prof)[q]]),
                    profile=case.dep.profile.name,
                    gpu=case.dep.gpu.name,
                )
            )
    return out


def _lattice_replay(case: BenchCase, fitted: tuple[str, ...]):
    """profile -> predicted summary, multilinear between replays on the lattice."""
    cache: dict[tuple, dict[str, float]] = {}

    def at(profile: Profile) -> dict[str, float]:
        key = tuple((p, profile.get(p)) for p in PARAMETERS)
        if key not in cache:
            cache[key] = case.replay(profile).predicted
        return cache[key]

    def interpolated(profile: Profile) -> dict[str, float]:
        if not fitted:
            return at(profile)
        lows, fracs = [], []
        for p in fitted:
            step = lattice_step(p)
            low = np.floor(profile.get(p) / step) * step
            lows.append(low)
            fracs.append((profile.get(p) - low) / step)
        total: dict[str, float] = {}
        for corner in itertools.product((0, 1), repeat=len(fitted)):
            weight = float(np.prod([f if c else 1 - f for c, f in zip(corner, fracs, strict=True)]))
            if weight == 0.0:
                continue
            values = {
                p: low + c * lattice_step(p) for p, low, c in zip(fitted, lows, corner, strict=True)
            }
            for k, v in at(profile.with_values(**values)).items():
                total[k] = total.get(k, 0.0) + weight * v
        return total

    return interpolated
