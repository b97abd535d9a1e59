"""A compact Llama / Mistral / Qwen2 decoder in plain torch, and the runner that times it.

The model is built from a config.json dict with random weights (no checkpoint): RMSNorm, RoPE
(HF rotate-half convention), GQA attention through
``torch.nn.functional.scaled_dot_product_attention``, gated SiLU MLP, q/k/v bias for Qwen2,
tied embeddings when the config says so, and a KV cache preallocated per point for
``batch x (prompt + output)`` tokens. Logits are computed for the last position only (as
serving engines do). rope_scaling and sliding windows do not change the cost much and are
ignored; MoE (Mixtral) is not supported here (use the vLLM runner).

Timing (STYLE.md point 8): warm-up runs are dropped, every clock read is preceded by a device
synchronize (``profiler.timer.Timer``). Prefill = one eager forward of ``batch x prompt`` tokens
plus the greedy pick of the first token. Decode on CUDA (default, ``cuda_graph=True``) = one
step captured in a CUDA graph at the middle decode position ``prompt + (output - 1) // 2`` and
replayed ``max(output - 1, 20)`` times back to back per repeat, mean per replay (what serving
stacks with CUDA graphs do; bench_torch_cudagraph.py in ../shared/reference/measured/).
Eager decode (CPU, or ``cuda_graph=False``) = mean time per step over ``output_len - 1`` steps,
timed as one block so per-step synchronization does not inflate it. Projections are fused
(qkv, gate_up) as vLLM fuses them; RMSNorm uses ``F.rms_norm``.

torch is imported inside functions only: ``import profiler.torch_runner`` stays light.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from perfmodel.errors import PerfModelError
from perfmodel.specs.dtypes import KV_BYTES, canonical_dtype
from perfmodel.specs.units import plural
from profiler.runner import Point, PointResult, summarize

SUPPORTED = ("llama", "mistral", "qwen2")
TORCH_DTYPES = ("fp32", "bf16", "fp16")  # what the plain-torch decoder runs in
TORCH_NAME = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class DecoderConfig:
    """The fields of a HF config.json the decoder needs (one explicit mapping)."""

    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    attention_bias: bool
    tie_word_embeddings: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config.json") -> DecoderConfig:
        from perfmodel.specs.models import parse_config

        model_type = str(data.get("model_type", "")).lower()
        if model_type not in SUPPORTED:
            raise PerfModelError(
                f"{source}: the torch runner supports model_type {', '.join(SUPPORTED)}, "
                f"not '{model_type or '(missing)'}' (use --runner vllm)"
            )
        spec = parse_config(data, source, source)  # the one config.json -> shape mapping
        return cls(
            model_type=spec.model_type,
            hidden_size=spec.hidden_size,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            num_kv_heads=spec.num_kv_heads,
            head_dim=spec.head_dim,
            intermediate_size=spec.intermediate_size,
            vocab_size=spec.vocab_size,
            rms_norm_eps=float(data.get("rms_norm_eps", 1e-6)),
            rope_theta=float(data.get("rope_theta", 10000.0)),
            attention_bias=spec.attention_bias,
            tie_word_embeddings=spec.tie_word_embeddings,
        )

    @property
    def matmul_params(self) -> int:
        """Weights read per decode step: attention, MLP and lm_head (not the embedding lookup)."""
        d, q, kv = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
        )
        per_layer = d * (q + 2 * kv) + q * d + 3 * d * self.intermediate_size
        return self.num_layers * per_layer + self.vocab_size * d


def torch_dtype(name: str):
    """'bf16' / 'fp16' / 'fp32' (or torch spellings) -> torch.dtype."""
    import torch

    return getattr(torch, TORCH_NAME[short_dtype(name)])


def short_dtype(name: str) -> str:
    """'bfloat16' -> 'bf16' (the names used in the measurement CSV)."""
    return canonical_dtype(name, "torch runner dtype", TORCH_DTYPES)


def build_model(
    cfg: DecoderConfig,
    device: str,
    dtype_name: str,
    max_positions: int,
    seed: int = 0,
    rope: bool = True,
):
    """The decoder as a torch.nn.Module with random weights on ``device``.

    ``rope=False`` leaves the rotary embedding out (three small elementwise kernels per layer),
    as ../shared/reference/measured/bench_torch_cudagraph.py does: measurements comparable with
    that reference set."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    dtype = torch_dtype(dtype_name)

    class RMSNorm(nn.Module):
        def __init__(self, dim: int, eps: float):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            if hasattr(F, "rms_norm"):  # torch >= 2.4: one fused kernel on CUDA
                return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
            xf = x.float()
            xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
            return xf.to(x.dtype) * self.weight

    class Attention(nn.Module):
        """Fused q/k/v projection (as vLLM's QKVParallelLinear); RoPE on q and k together."""

        def __init__(self):
            super().__init__()
            d, hd = cfg.hidden_size, cfg.head_dim
            width = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd
            self.qkv_proj = nn.Linear(d, width, bias=cfg.attention_bias)
            self.o_proj = nn.Linear(cfg.num_heads * hd, d, bias=False)

        def forward(self, x, cos, sin, k_cache, v_cache, start: int):
            b, s, _ = x.shape
            h, kvh, hd = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
            qkv = self.qkv_proj(x)
            qk = qkv[..., : (h + kvh) * hd].view(b, s, h + kvh, hd).transpose(1, 2)
            v = qkv[..., (h + kvh) * hd :].view(b, s, kvh, hd).transpose(1, 2)
            if rope:
                qk = apply_rope(torch, qk, cos, sin)
            q, k = qk[:, :h], qk[:, h:]
            end = start + s
            k_cache[:b, :, start:end] = k
            v_cache[:b, :, start:end] = v
            keys, values = k_cache[:b, :, :end], v_cache[:b, :, :end]
            if start == 0:
                mask, causal = None, s > 1
            elif s == 1:
                mask, causal = None, False
            else:  # s new tokens after `start` cached ones
                rows = torch.arange(start, end, device=x.device)[:, None]
                mask, causal = torch.arange(end, device=x.device)[None, :] <= rows, False
            out = _sdpa(F, q, keys, values, mask, causal, h // kvh)
            return self.o_proj(out.transpose(1, 2).reshape(b, s, h * hd))

    class MLP(nn.Module):
        """Fused gate and up projection (as vLLM's MergedColumnParallelLinear)."""

        def __init__(self):
            super().__init__()
            d, f = cfg.hidden_size, cfg.intermediate_size
            self.gate_up_proj = nn.Linear(d, 2 * f, bias=False)
            self.down_proj = nn.Linear(f, d, bias=False)

        def forward(self, x):
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
            self.self_attn = Attention()
            self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
            self.mlp = MLP()

        def forward(self, x, cos, sin, k_cache, v_cache, start):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, k_cache, v_cache, start)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg.num_layers))
            self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
            if cfg.tie_word_embeddings:
                self.lm_head.weight = self.embed_tokens.weight
            inv = 1.0 / (
                cfg.rope_theta
                ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim)
            )
            freqs = torch.outer(torch.arange(max_positions, dtype=torch.float32), inv)
            emb = torch.cat((freqs, freqs), dim=-1)
            half = cfg.head_dim // 2
            sign = torch.cat((-torch.ones(half), torch.ones(half)))
            self.register_buffer("cos", emb.cos(), persistent=False)
            self.register_buffer("sin", emb.sin() * sign, persistent=False)  # signed, see roll
            self.k_cache: list = []
            self.v_cache: list = []

        def allocate_cache(self, batch: int, length: int) -> None:
            """Preallocate K and V for every layer: [batch, kv_heads, length, head_dim]."""
            self.free_cache()
            shape = (batch, cfg.num_kv_heads, length, cfg.head_dim)
            ref = self.embed_tokens.weight
            self.k_cache = [
                torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in self.layers
            ]
            self.v_cache = [
                torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in self.layers
            ]

        def free_cache(self) -> None:
            self.k_cache, self.v_cache = [], []

        def forward(self, ids, start: int):
            """Logits of the last position after feeding ``ids`` [b, s] at positions start.."""
            s = ids.shape[1]
            x = self.embed_tokens(ids)
            cos = self.cos[start : start + s].to(x.dtype)[None, None]
            sin = self.sin[start : start + s].to(x.dtype)[None, None]
            for layer, kc, vc in zip(self.layers, self.k_cache, self.v_cache, strict=True):
                x = layer(x, cos, sin, kc, vc, start)
            return self.lm_head(self.norm(x[:, -1]))

    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build directly in the target dtype (no fp32 copy)
    try:
        with torch.device(device):
            model = Decoder()
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                param.zero_()
    model.eval()
    model.requires_grad_(False)
    return model


def apply_rope(torch, x, cos, signed_sin):
    """HF rotate-half RoPE, x * cos + rotate_half(x) * sin, in three kernels: rotate_half(x)
    = cat(-x2, x1) = roll(x, hd/2) * sign with sign = (-1 on the first half, +1 on the second),
    so ``signed_sin`` = sin * sign is precomputed once and the result is one addcmul."""
    return torch.addcmul(x * cos, torch.roll(x, x.shape[-1] // 2, dims=-1), signed_sin)


def _sdpa(F, q, k, v, mask, causal: bool, groups: int):
    """scaled_dot_product_attention with GQA (enable_gqa, or repeated K/V on older torch)."""
    if groups > 1:
        try:
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=True
            )
        except TypeError:  # torch < 2.5 has no enable_gqa
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


GRAPH_REPLAYS = 20  # back-to-back replays of the graphed decode step per repeat


def capture_decode(model, token, position: int):
    """One decode step at ``position`` captured in a CUDA graph (gpt-fast / MagicDec style,
    as ../shared/reference/measured/bench_torch_cudagraph.py): the step reads the static
    ``token`` buffer and writes its argmax back into it, so back-to-back replays are a real
    autoregressive loop at a fixed position (attending ``position + 1`` cached tokens).
    Two warm-up steps run on a side stream first, as torch.cuda.graphs requires."""
    import torch

    tok = token.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            model(tok, position)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        tok.copy_(model(tok, position).argmax(-1, keepdim=True))
    return graph, tok  # the caller keeps the static buffer alive as long as the graph


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; os.cpu_count() elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class TorchRunner:
    """Times the plain-torch decoder; one model per sweep, one KV cache per point."""

    name = "torch"

    def __init__(
        self,
        config: dict[str, Any],
        device: str = "auto",
        dtype: str | None = None,
        repeats: int = 3,
        warmup: int = 1,
        seed: int = 0,
        threads: int | None = None,
        source: str = "config.json",
        cuda_graph: bool = True,
        decode_only: bool = False,
        rope: bool = True,
    ):
        self.cfg = DecoderConfig.from_dict(config, source)
        self.rope = bool(rope)
        self.requested_cuda_graph = bool(cuda_graph)
        self.decode_only = bool(decode_only)
        device = str(device).strip().lower()
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise PerfModelError(f"--device must be cpu or cuda, not '{device}'")
        self.requested_device = device
        self.requested_dtype = dtype
        if dtype is not None:
            short_dtype(dtype)  # validate early, before anything is written
        if repeats < 1 or warmup < 0:
            raise PerfModelError("--repeats must be >= 1 and --warmup >= 0")
        if threads is not None:
            cores = usable_cores()
            if not 1 <= threads <= cores:
                raise PerfModelError(
                    f"--threads {threads}: this process may use {plural(cores, 'CPU core')}; "
                    "give 1 to "
                    f"{cores} (more threads than cores only slow the measurement down)"
                )
        self.repeats, self.warmup, self.seed, self.threads = repeats, warmup, seed, threads
        self.device = "cpu" if device == "auto" else device
        self.dtype = short_dtype(dtype) if dtype else ("fp32" if self.device == "cpu" else "bf16")
        self.model = None
        self._gen = None

    # ---- identity ---------------------------------------------------------------------
    def settings(self) -> dict[str, object]:
        import torch

        out: dict[str, object] = {
            "device": self.device,
            "dtype": self.dtype,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "attention": "sdpa",
            "timer": "perf_counter+synchronize",
            "seed": self.seed,
            "cuda_graph": self.cuda_graph,
            "rope": self.rope,
        }
        if self.decode_only:
            out["decode_only"] = "kv cache filled with random values, no prefill (ttft empty)"
        if self.cuda_graph:
            out["decode_replays"] = GRAPH_REPLAYS
        if self.device == "cpu":
            out["threads"] = torch.get_num_threads()
        return out

    @property
    def uses_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def cuda_graph(self) -> bool:
        """Decode replayed from a CUDA graph: asked for (the default) and on a CUDA device."""
        return self.requested_cuda_graph and self.uses_gpu

    def resolve_device(self) -> None:
        """Pick cuda when --device auto and a GPU is there (imports torch)."""
        import torch

        if self.requested_device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
            if self.requested_dtype is None:
                self.dtype = "fp32" if self.device == "cpu" else "bf16"
        elif self.uses_gpu and not torch.cuda.is_available():
            raise PerfModelError(
                "--device cuda: torch sees no CUDA GPU (torch.cuda.is_available() is False)"
            )

    # ---- lifecycle ----------------------------------------------------------------------
    def setup(self, points: list[Point]) -> None:
        import torch

        self.resolve_device()
        if self.threads:
            torch.set_num_threads(self.threads)
        max_len = max(p.prompt_len + p.output_len for p in points)
        try:
            self.model = build_model(
                self.cfg, self.device, self.dtype, max_len, self.seed, rope=self.rope
            )
        except Exception as exc:
            from profiler.runner import is_oom

            if is_oom(exc):
                raise PerfModelError(
                    f"the model's weights do not fit on {self.device} ({exc}); use a smaller model"
                ) from exc
            raise
        self._gen = torch.Generator(device=self.device).manual_seed(self.seed)

    def _timer(self):
        from profiler.timer import Timer

        return Timer(self.device)

    def measure(self, point: Point) -> PointResult:
        import torch

        model = self.model
        if model is None:
            raise RuntimeError("TorchRunner.setup() was not called")
        b, p, o = point.batch_size, point.prompt_len, point.output_len
        model.allocate_cache(b, p + o)
        ttfts: list[float] = []
        tpots: list[float] = []
        graph = None
        position = p + (o - 1) // 2  # the middle decode step (the only one, for o == 2)
        replays = max(o - 1, GRAPH_REPLAYS)
        try:
            with torch.inference_mode():
                if self.decode_only:  # the cache holds p random tokens, as a prefill leaves it
                    for cache in (*model.k_cache, *model.v_cache):
                        cache.normal_(generator=self._gen)
                timer = self._timer()
                for run in range(self.warmup + self.repeats):
                    if self.decode_only:
                        ttft = float("nan")
                        token = torch.randint(
                            0, self.cfg.vocab_size, (b, 1), device=self.device, generator=self._gen
                        )
                    else:
                        ids = torch.randint(
                            0, self.cfg.vocab_size, (b, p), device=self.device, generator=self._gen
                        )
                        with timer:
                            token = model(ids, 0).argmax(-1, keepdim=True)
                        ttft = timer.elapsed_s
                    tpot = float("nan")
                    if o > 1 and self.cuda_graph:
                        if graph is None:
                            graph, _static = capture_decode(model, token, position)
                        graph.replay()
                        with timer:
                            for _ in range(replays):
                                graph.replay()
                        tpot = timer.elapsed_s / replays
                    elif o > 1:
                        with timer:
                            for step in range(o - 1):
                                token = model(token, p + step).argmax(-1, keepdim=True)
                        tpot = timer.elapsed_s / (o - 1)
                    if run >= self.warmup:
                        ttfts.append(ttft)
                        tpots.append(tpot)
        finally:
            del graph
            model.free_cache()
        result = summarize(ttfts, tpots)
        if o > 1 and self.cuda_graph:
            result.extra["decode_context"] = position + 1  # tokens the graphed step attends
        if math.isfinite(result.tpot_s) and result.tpot_s > 0:
            bytes_per_param = KV_BYTES[self.dtype]  # specs.dtypes: one table of element sizes
            weights = self.cfg.matmul_params * bytes_per_param
            result.extra["achieved_weight_gbps"] = round(weights / result.tpot_s / 1e9, 3)
        return result

    def recover(self, error: str = "") -> None:
        if self.model is not None:
            self.model.free_cache()
        if self.uses_gpu:
            import torch

            torch.cuda.empty_cache()

    def close(self) -> None:
        self.model = None
        if self.uses_gpu:
            import gc

            import torch

            gc.collect()  # the next sweep in this process builds its own model
            torch.cuda.empty_cache()

    @property
    def framework_version(self) -> str:
        import torch

        return f"torch {torch.__version__}"
