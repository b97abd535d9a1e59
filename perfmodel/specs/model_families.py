"""One explicit mapping from a Hugging Face config.json to a ModelSpec, per model family.

Every field is read under the name the Hugging Face config gives it; a required field that
is missing is an error naming the file and the field (STYLE.md 3: no guessing from ratios).
Defaults are the ones of the transformers config class, stated where used.

Families (model_type -> what is read):
- llama, mistral, qwen2, phi3, qwen3: dense GQA. phi3 fuses qkv_proj and gate_up_proj (the
  same weights and math as Llama); qwen3 has an explicit head_dim (not hidden/heads) and
  RMSNorms on q and k (2*head_dim per layer); qwen2 q/k/v biases.
- gemma2, gemma3_text, gemma3 (text_config): local/global interleaving (`layer_types`, else
  gemma2 alternates sliding/full, gemma3 every `sliding_window_pattern`-th layer is full),
  4 norms per layer, tied embeddings.
- mixtral, qwen3_moe (decoder_sparse_step, mlp_only_layers), llama4 (text_config;
  interleave_moe_layer_step or moe_layers, a shared expert, dense layers of
  intermediate_size_mlp, chunked local attention on the RoPE layers), gpt_oss (biased experts
  and router, attention sinks, `layer_types`), deepseek_v3 / kimi_k2 (MLA, first_k_dense_replace,
  n_shared_experts, moe_intermediate_size, num_nextn_predict_layers apart).
- any config's `layer_types` (full_attention, sliding_attention) is honoured per layer.
- An unknown model_type whose fields match a family is priced as that family with a notice;
  otherwise one error naming the fields it lacks.
- quantization_config (and a sibling hf_quant_config.json, NVIDIA ModelOpt) sets the
  checkpoint format: fp8 or fp8-block (block-scaled), mxfp4 (experts only where the rest is excluded),
  nvfp4, int4 (AWQ/GPTQ).
"""

from __future__ import annotations

from collections.abc import Callable

from perfmodel.errors import PerfModelError
from perfmodel.specs import inputs
from perfmodel.specs.model_spec import CHUNKED, FULL, SLIDING, ModelSpec

# Physical sanity bounds on config.json counts: a value past them is a typo (or 10**400), not
# a model. The largest published models are well inside (hidden 16384-25600, 126-160 layers,
# vocab ~260k, context 10M tokens, 384 routed experts). Other counts: COUNT_MAX.
BOUNDS = {
    "hidden_size": 1 << 20,
    "num_hidden_layers": 100_000,
    "num_attention_heads": 1 << 16,
    "num_key_value_heads": 1 << 16,
    "head_dim": 1 << 16,
    "intermediate_size": 1 << 24,
    "vocab_size": 1 << 24,
    "max_position_embeddings": 1 << 30,
    "num_local_experts": 1 << 16,
    "num_experts": 1 << 16,
    "n_routed_experts": 1 << 16,
    "num_experts_per_tok": 1 << 16,
}
COUNT_MAX = 1 << 30


class _Fields:
    """Typed reads of config fields through specs.inputs (every error names the file and the
    field; counts are integers within BOUNDS, booleans JSON true/false)."""

    def __init__(self, data: dict, source: str):
        self.data, self.source = data, source

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def int(self, key: str, default=inputs._MISSING, minimum: int = 1) -> int:
        top = BOUNDS.get(key, COUNT_MAX)
        return inputs.require_int(self.data, key, self.source, minimum, top, default=default)

    def bool(self, key: str, default: bool) -> bool:
        return inputs.require_bool(self.data, key, self.source, default)

    def int_list(self, key: str, default=()) -> tuple[int, ...]:
        value = self.data.get(key)
        if value is None:
            return tuple(default)
        if not isinstance(value, list):
            raise PerfModelError(f"{self.source}: field '{key}' must be a list of integers")
        return tuple(inputs.check_int(v, key, self.source, 0, COUNT_MAX) for v in value)

    def str_list(self, key: str) -> tuple[str, ...] | None:
        if self.data.get(key) is None:
            return None
        return tuple(inputs.require_str_list(self.data, key, self.source))

    def top_k(self, experts_key: str, experts: int) -> int:
        """num_experts_per_tok, at most the number of routed experts."""
        k = self.int("num_experts_per_tok")
        if k > experts:
            raise PerfModelError(
                f"{self.source}: num_experts_per_tok ({k}) exceeds {experts_key} ({experts})"
            )
        return k


def _pattern(windows: list[int], moe: list[bool]) -> tuple[tuple[int, bool, int], ...]:
    """Per-layer (window, moe) -> (window, moe, count) in order of first appearance; () when
    every layer is the same full-attention kind of the model (the uniform default)."""
    counts: dict[tuple[int, bool], int] = {}
    for key in zip(windows, moe, strict=True):
        counts[key] = counts.get(key, 0) + 1
    if len(counts) == 1 and next(iter(counts))[0] == 0:
        return ()
    return tuple((w, m, c) for (w, m), c in counts.items())


def _layer_windows(f: _Fields, layers: int, default: list[str]) -> list[int]:
    """Window per layer from `layer_types` (else `default`): 0 for full attention."""
    kinds = f.str_list("layer_types") or tuple(default)
    if len(kinds) != layers:
        raise PerfModelError(
            f"{f.source}: field 'layer_types' has {len(kinds)} entries for {layers} layers"
        )
    out = []
    for kind in kinds:
        if kind == FULL:
            out.append(0)
        elif kind in (SLIDING, CHUNKED):
            key = "attention_chunk_size" if kind == CHUNKED else "sliding_window"
            out.append(f.int(key))
        else:
            raise PerfModelError(
                f"{f.source}: layer type '{kind}' in 'layer_types' is not modeled "
                f"(supported: {FULL}, {SLIDING})"
            )
    return out


def _gqa(f: _Fields) -> dict:
    d, heads = f.int("hidden_size"), f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", heads)  # absent or null: multi-head (HF)
    if heads % kv_heads:
        raise PerfModelError(
            f"{f.source}: num_attention_heads ({heads}) must be a multiple of "
            f"num_key_value_heads ({kv_heads})"
        )
    if not f.has("head_dim") and d % heads:
        raise PerfModelError(
            f"{f.source}: hidden_size ({d}) is not a multiple of num_attention_heads "
            f"({heads}); give 'head_dim'"
        )
    return dict(
        hidden_size=d,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=f.int("head_dim", d // heads),
    )


def _base(f: _Fields, tie_default: bool) -> dict:
    return dict(
        num_layers=f.int("num_hidden_layers"),
        vocab_size=f.int("vocab_size"),
        max_position_embeddings=f.int("max_position_embeddings"),  # no default (STYLE.md 3)
        tie_word_embeddings=f.bool("tie_word_embeddings", tie_default),
    )


def _llama(f: _Fields, model_type: str) -> dict:
    """Llama, Mistral, Qwen2, Phi-3 (fused qkv/gate_up: same weights), Qwen3 (q/k norms)."""
    spec = _base(f, False) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    bias = f.bool("attention_bias", model_type == "qwen2")
    spec |= dict(attention_bias=bias, o_bias=bias and model_type in ("llama",))
    if model_type == "qwen3":
        spec["qk_norm_params"] = 2 * spec["head_dim"]
    layers = spec["num_layers"]
    if f.has("layer_types"):
        windows = _layer_windows(f, layers, [])
    elif model_type in ("qwen2", "qwen3"):  # HF: sliding only with use_sliding_window
        windows = [0] * layers
        if f.bool("use_sliding_window", False):
            first = f.int("max_window_layers", layers, minimum=0)
            windows = [f.int("sliding_window") if i >= first else 0 for i in range(layers)]
    else:  # mistral, phi3: a sliding_window applies to every layer
        windows = [f.int("sliding_window", 0, minimum=0)] * layers
    spec["layer_pattern"] = _pattern(windows, [False] * layers)
    return spec


def _gemma(f: _Fields, model_type: str) -> dict:
    """Gemma-2/3: local (sliding) and global layers, 4 norms per layer, tied embeddings."""
    spec = _base(f, True) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    layers = spec["num_layers"]
    if model_type == "gemma2":
        default = [SLIDING if (i + 1) % 2 else FULL for i in range(layers)]
    elif f.has("layer_types"):
        default = []
    else:
        key = "sliding_window_pattern"  # newer configs: _sliding_window_pattern
        every = f.int(key if f.has(key) else "_" + key)
        default = [SLIDING if (i + 1) % every else FULL for i in range(layers)]
    windows = _layer_windows(f, layers, default)
    qk_norm = 2 * spec["head_dim"] if model_type != "gemma2" else 0
    return spec | dict(
        attention_bias=f.bool("attention_bias", False),
        norms_per_layer=4,
        qk_norm_params=qk_norm,
        layer_pattern=_pattern(windows, [False] * layers),
    )


def _mixtral(f: _Fields, model_type: str) -> dict:
    spec = _base(f, False) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    layers = spec["num_layers"]
    windows = [f.int("sliding_window", 0, minimum=0)] * layers
    experts = f.int("num_local_experts")
    top_k = f.top_k("num_local_experts", experts) if experts > 1 else 1
    return spec | dict(
        num_experts=experts,
        experts_per_token=top_k,
        layer_pattern=_pattern(windows, [experts > 1] * layers),
    )


def _qwen3_moe(f: _Fields, model_type: str) -> dict:
    spec = _base(f, False) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    layers = spec["num_layers"]
    step = f.int("decoder_sparse_step", 1)
    dense = set(f.int_list("mlp_only_layers"))
    experts = f.int("num_experts")
    moe = [i not in dense and experts > 0 and (i + 1) % step == 0 for i in range(layers)]
    windows = _layer_windows(f, layers, [FULL] * layers)
    return spec | dict(
        num_experts=experts,
        experts_per_token=f.top_k("num_experts", experts),
        moe_intermediate_size=f.int("moe_intermediate_size"),
        shared_intermediate_size=f.int("shared_expert_intermediate_size", 0, minimum=0),
        qk_norm_params=2 * spec["head_dim"],
        attention_bias=f.bool("attention_bias", False),
        layer_pattern=_pattern(windows, moe),
    )


def _llama4(f: _Fields, model_type: str) -> dict:
    """Llama-4 text model: MoE every interleave_moe_layer_step-th layer (or `moe_layers`),
    one shared expert of intermediate_size beside the routed ones, dense layers of
    intermediate_size_mlp; the RoPE layers (3 of every 4: no_rope_layers) attend inside
    chunks of attention_chunk_size tokens, priced as a window of that size (an upper bound:
    within a chunk a token sees on average half of it)."""
    spec = _base(f, False) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    layers = spec["num_layers"]
    step = f.int("interleave_moe_layer_step", 1)
    moe_ids = set(f.int_list("moe_layers", range(step - 1, layers, step)))
    nope = f.int_list("no_rope_layers", [int((i + 1) % 4 != 0) for i in range(layers)])
    chunk = f.int("attention_chunk_size", 0, minimum=0)
    windows = [chunk if (chunk and nope[i]) else 0 for i in range(layers)]
    experts = f.int("num_local_experts")
    return spec | dict(
        num_experts=experts,
        experts_per_token=f.top_k("num_local_experts", experts),
        shared_intermediate_size=spec["intermediate_size"],
        dense_intermediate_size=f.int("intermediate_size_mlp"),
        attention_bias=f.bool("attention_bias", False),
        layer_pattern=_pattern(windows, [i in moe_ids for i in range(layers)]),
    )


def _gpt_oss(f: _Fields, model_type: str) -> dict:
    """gpt-oss: every layer MoE with biased experts and router; q/k/v/o biases; one sink
    logit per head; sliding and full layers alternate as `layer_types` says."""
    spec = _base(f, False) | _gqa(f) | dict(intermediate_size=f.int("intermediate_size"))
    layers = spec["num_layers"]
    windows = _layer_windows(f, layers, [FULL] * layers)
    bias = f.bool("attention_bias", True)
    experts = f.int("num_local_experts")
    key = "num_experts_per_tok" if f.has("num_experts_per_tok") else "experts_per_token"
    top_k = f.top_k("num_local_experts", experts) if key == "num_experts_per_tok" else f.int(key)
    return spec | dict(
        num_experts=experts,
        experts_per_token=top_k,
        attention_bias=bias,
        o_bias=bias,
        attention_sinks=True,
        expert_bias=True,
        router_bias=True,
        layer_pattern=_pattern(windows, [True] * layers),
    )


def _deepseek(f: _Fields, model_type: str) -> dict:
    """DeepSeek-V3 / Kimi-K2: MLA; the first first_k_dense_replace layers dense
    (intermediate_size), then MoE every moe_layer_freq-th layer with n_shared_experts shared
    experts of moe_intermediate_size; a noaux_tc router carries a bias per expert."""
    d, heads = f.int("hidden_size"), f.int("num_attention_heads")
    spec = _base(f, False)
    layers = spec["num_layers"]
    moe_ffn = f.int("moe_intermediate_size")
    experts = f.int("n_routed_experts")
    first, freq = f.int("first_k_dense_replace", 0, minimum=0), f.int("moe_layer_freq", 1)
    moe = [i >= first and i % freq == 0 for i in range(layers)]
    nope, rope = f.int("qk_nope_head_dim"), f.int("qk_rope_head_dim")
    return spec | dict(
        hidden_size=d,
        num_heads=heads,
        num_kv_heads=f.int("num_key_value_heads", heads),
        head_dim=nope + rope,
        intermediate_size=f.int("intermediate_size"),
        kv_lora_rank=f.int("kv_lora_rank"),
        q_lora_rank=f.int("q_lora_rank", 0, minimum=0),
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        v_head_dim=f.int("v_head_dim"),
        num_experts=experts,
        experts_per_token=f.top_k("n_routed_experts", experts),
        moe_intermediate_size=moe_ffn,
        shared_intermediate_size=f.int("n_shared_experts", 0, minimum=0) * moe_ffn,
        router_bias=f.data.get("topk_method") == "noaux_tc",
        mtp_layers=f.int("num_nextn_predict_layers", 0, minimum=0),
        layer_pattern=_pattern([0] * layers, moe),
    )


Family = Callable[[_Fields, str], dict]
FAMILIES: dict[str, Family] = {
    "llama": _llama,
    "mistral": _llama,
    "qwen2": _llama,
    "phi3": _llama,
    "qwen3": _llama,
    "gemma2": _gemma,
    "gemma3": _gemma,
    "gemma3_text": _gemma,
    "mixtral": _mixtral,
    "qwen3_moe": _qwen3_moe,
    "llama4": _llama4,
    "llama4_text": _llama4,
    "gpt_oss": _gpt_oss,
    "deepseek_v3": _deepseek,
    "kimi_k2": _deepseek,
}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES)

# an unknown model_type is matched on the fields that only one family has, in this order;
# the fields each family needs (beyond the common ones) name what a config lacks
_COMMON = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("deepseek_v3", ("kv_lora_rank", "n_routed_experts")),
    ("qwen3_moe", ("num_experts", "moe_intermediate_size")),
    ("mixtral", ("num_local_experts",)),
    ("llama", ("intermediate_size",)),
)
_NEEDS = {
    "deepseek_v3": (
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
        "n_routed_experts",
        "moe_intermediate_size",
        "num_experts_per_tok",
        "intermediate_size",
        "max_position_embeddings",
    ),
    "qwen3_moe": (
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "intermediate_size",
        "max_position_embeddings",
    ),
    "mixtral": (
        "num_local_experts",
        "num_experts_per_tok",
        "intermediate_size",
        "max_position_embeddings",
    ),
    "llama": ("intermediate_size", "max_position_embeddings"),
}


def _text_config(data: dict, source: str) -> dict:
    """Multimodal wrappers (llama4, gemma3) keep the language model in text_config."""
    text = data.get("text_config")
    if text is None:
        return data
    if not isinstance(text, dict):
        raise PerfModelError(f"{source}: field 'text_config' must be an object")
    merged = {k: v for k, v in data.items() if k != "text_config"} | text
    merged["model_type"] = data.get("model_type", text.get("model_type"))
    return merged


def _match_family(data: dict, model_type: str, source: str) -> tuple[str, str]:
    """(family, notice) for a model_type perfmodel does not know, or one clear error."""
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    for family, signature in _SIGNATURES:
        if any(data.get(k) is not None for k in signature):
            lacks = [k for k in (*_COMMON, *_NEEDS[family]) if data.get(k) is None]
            if not lacks:
                notice = (
                    f"model_type '{model_type}' is not one perfmodel knows; its fields match "
                    f"{family}, so it is priced as {family}"
                )
                return family, notice
            break
    else:
        lacks = [k for k in (*_COMMON, *_NEEDS["llama"]) if data.get(k) is None]
        family = "llama"
    raise PerfModelError(
        f"{source}: field 'model_type' is '{model_type or '(missing)'}' (supported: {supported})"
        f" and its fields do not match a known family ({family} would need "
        f"{', '.join(repr(k) for k in lacks)})"
    )


def parse_config(data: dict, name: str, source: str, quant: dict | None = None) -> ModelSpec:
    """The one mapping from a config.json dict to a ModelSpec (errors name source and field).
    `quant` is a sibling hf_quant_config.json (NVIDIA ModelOpt checkpoints), if any."""
    data = _text_config(data, source)
    model_type = inputs.require_str(data, "model_type", source, default="", empty_ok=True).lower()
    notices: tuple[str, ...] = ()
    family = model_type
    if model_type not in FAMILIES:
        family, notice = _match_family(data, model_type, source)
        notices = (notice,)
    fields = _Fields(data, source)
    spec = FAMILIES[family](fields, family)
    fmt, experts_only, note = checkpoint_format(data, quant)
    return ModelSpec(
        name=name,
        model_type=model_type,
        family=family,
        source=source,
        config_path=source,
        checkpoint_format=fmt,
        quantized_experts_only=experts_only,
        notices=notices + ((note,) if note else ()),
        **spec,
    )


def checkpoint_format(data: dict, quant: dict | None = None) -> tuple[str, bool, str]:
    """(weight format, experts only, notice) from quantization_config or hf_quant_config.json:
    fp8 (per-tensor), fp8-block (128x128 block scales), mxfp4, nvfp4, int4; '' when unquantized."""
    q = data.get("quantization_config")
    if isinstance(quant, dict) and isinstance(quant.get("quantization"), dict):
        q = {"quant_method": "modelopt"} | quant["quantization"]
    if not isinstance(q, dict):
        return "", False, ""
    method = str(q.get("quant_method", "")).lower()
    excluded = " ".join(map(str, q.get("modules_to_not_convert") or ()))
    if method == "fp8":
        return ("fp8-block" if q.get("weight_block_size") else "fp8"), False, ""
    if method == "mxfp4":
        return "mxfp4", "self_attn" in excluded, ""
    if method == "modelopt":
        algo = str(q.get("quant_algo", "")).upper()
        if algo in ("NVFP4", "FP8"):
            return algo.lower(), False, ""
    if method in ("awq", "gptq") and q.get("bits") == 4:
        return "int4", False, ""
    return (
        "",
        False,
        (
            f"quantization_config quant_method '{method or '?'}' is not modeled: weights are "
            "priced at the weight dtype given (--weight-dtype)"
        ),
    )
