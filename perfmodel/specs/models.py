"""Model architectures from Hugging Face config.json files, shipped in model_configs/.

One explicit mapping from config.json to ModelSpec (no guessing from ratios): every required
field is read from the file and a missing one is an error naming the file and the field.
Supported families: Llama, Mistral, Qwen2 (dense, GQA) and Mixtral (sparse MoE).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import MODEL_CONFIG_DIR
from perfmodel.specs import inputs, yamlio

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "mixtral")
_REQUIRED = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",  # the context window: no default (STYLE.md 3)
)


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer, as the cost model needs it."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    num_experts: int = 1  # 1 = dense MLP
    experts_per_token: int = 1
    published_params: float | None = None  # from the model card, for checks
    source: str = ""  # where the architecture or its published size comes from
    config_path: str = ""  # the config.json it was read from

    # --- derived sizes --------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def attn_params_per_layer(self) -> int:
        """Wq, Wk, Wv, Wo (+ q/k/v biases for Qwen2)."""
        d = self.hidden_size
        params = d * (self.q_dim + 2 * self.kv_dim) + self.q_dim * d
        if self.attention_bias:
            params += self.q_dim + 2 * self.kv_dim
        return params

    @property
    def expert_params(self) -> int:
        """One gated MLP (gate, up, down): 3 * d * ffn."""
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def mlp_params_per_layer(self) -> int:
        router = self.hidden_size * self.num_experts if self.is_moe else 0
        return self.num_experts * self.expert_params + router

    @property
    def layer_params(self) -> int:
        return self.attn_params_per_layer + self.mlp_params_per_layer + 2 * self.hidden_size

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def param_count(self) -> int:
        """Total parameters: embeddings + layers + final norm + lm_head (unless tied)."""
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.embedding_params + self.num_layers * self.layer_params + self.hidden_size + head

    @property
    def active_params(self) -> int:
        """Parameters touched per token (MoE: only experts_per_token experts)."""
        if not self.is_moe:
            return self.param_count
        inactive = (self.num_experts - self.experts_per_token) * self.expert_params
        return self.param_count - self.num_layers * inactive

    @property
    def matmul_params(self) -> int:
        """Weights that take part in matmuls per token (excludes the embedding lookup)."""
        return (
            self.active_params
            - self.embedding_params
            + (self.lm_head_params if self.tie_word_embeddings else 0)
        )

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV cache per token over all layers: 2 (K and V) * L * h_kv * head_dim * bytes."""
        return 2.0 * self.num_layers * self.num_kv_heads * self.head_dim * kv_bytes


# Physical sanity bounds on config.json counts: a value past them is a typo (or 10**400), not
# a model. The largest published models are well inside (hidden 16384-25600, 126-160 layers,
# vocab ~260k, context 10M tokens, 256 routed experts).
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
    "num_experts_per_tok": 1 << 16,
}


def _count(data: dict, key: str, source: str, default=inputs._MISSING) -> int:
    return inputs.require_int(data, key, source, 1, BOUNDS[key], default=default)


def parse_config(data: dict, name: str, source: str) -> ModelSpec:
    """The one mapping from a config.json dict to a ModelSpec (errors name source and field).

    Counts are integers within BOUNDS; `num_key_value_heads` absent or null means multi-head
    attention (HF convention), 0 is refused; heads must be a multiple of KV heads; a MoE
    (`num_local_experts`) needs 1 <= num_experts_per_tok <= num_local_experts; booleans are
    JSON true/false (the string "false" is refused, not read as true)."""
    model_type = inputs.require_str(data, "model_type", source, default="", empty_ok=True)
    model_type = model_type.lower()
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PerfModelError(
            f"{source}: field 'model_type' is '{model_type or '(missing)'}'; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    sizes = {key: _count(data, key, source) for key in _REQUIRED}
    heads = sizes["num_attention_heads"]
    kv_heads = _count(data, "num_key_value_heads", source, default=heads)
    if heads % kv_heads:
        raise PerfModelError(
            f"{source}: num_attention_heads ({heads}) must be a multiple of "
            f"num_key_value_heads ({kv_heads})"
        )
    if "head_dim" in data and data["head_dim"] is not None:
        head_dim = _count(data, "head_dim", source)
    elif sizes["hidden_size"] % heads:
        raise PerfModelError(
            f"{source}: hidden_size ({sizes['hidden_size']}) is not a multiple of "
            f"num_attention_heads ({heads}); give 'head_dim'"
        )
    else:
        head_dim = sizes["hidden_size"] // heads
    experts = _count(data, "num_local_experts", source, default=1)
    top_k = 1
    if experts > 1:
        top_k = _count(data, "num_experts_per_tok", source)
        if top_k > experts:
            raise PerfModelError(
                f"{source}: num_experts_per_tok ({top_k}) exceeds num_local_experts ({experts})"
            )
    if model_type == "mixtral" and "num_local_experts" not in data:
        raise PerfModelError(f"{source}: missing field 'num_local_experts' (a mixtral is a MoE)")
    return ModelSpec(
        name=name,
        model_type=model_type,
        hidden_size=sizes["hidden_size"],
        num_layers=sizes["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=sizes["intermediate_size"],
        vocab_size=sizes["vocab_size"],
        max_position_embeddings=sizes["max_position_embeddings"],
        tie_word_embeddings=inputs.require_bool(data, "tie_word_embeddings", source, False),
        attention_bias=inputs.require_bool(data, "attention_bias", source, model_type == "qwen2"),
        num_experts=experts,
        experts_per_token=top_k,
        source=source,
        config_path=source,
    )


def load_config_file(path: str | Path, name: str | None = None) -> ModelSpec:
    """Parse a config.json (a file, or a directory holding one), in any text encoding."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PerfModelError(f"model config not found: {path}")
    data = inputs.read_json(path, "model config (config.json)")
    return parse_config(data, name or config_name(data, path), str(path))


def config_name(data: dict, path: Path) -> str:
    """A model's display name from its config: the last part of `_name_or_path`
    (e.g. 'meta-llama/Llama-3.1-8B' -> 'Llama-3.1-8B'), else the folder holding the file
    (resolved, so 'config.json' given relative to the working directory still has one),
    else the file's stem."""
    given = str(data.get("_name_or_path") or "").strip().rstrip("/")
    if given:
        return given.split("/")[-1]
    return path.resolve().parent.name or path.stem


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, str], dict[str, dict]]:
    """(lower-case name or alias -> canonical name, canonical name -> registry entry)."""
    reg_path = MODEL_CONFIG_DIR / "registry.yaml"
    entries = (yamlio.safe_load(reg_path.read_text()) or {}).get("models", {})
    names: dict[str, str] = {}
    for canonical in sorted(p.parent.name for p in MODEL_CONFIG_DIR.glob("*/config.json")):
        names[canonical.lower()] = canonical
        for alias in (entries.get(canonical) or {}).get("aliases", []) or []:
            names[str(alias).lower()] = canonical
    return names, entries


def list_models() -> list[str]:
    return sorted(set(_registry()[0].values()))


def model_aliases() -> dict[str, list[str]]:
    names, _ = _registry()
    out: dict[str, list[str]] = {}
    for alias, canonical in names.items():
        if alias != canonical.lower():
            out.setdefault(canonical, []).append(alias)
    return out


@lru_cache(maxsize=64)
def load_model(name: str) -> ModelSpec:
    """A model by alias (8b, 70b ...), full name (case-insensitive) or path to config.json."""
    if isinstance(name, ModelSpec):  # pragma: no cover - convenience
        return name
    key = str(name).strip()
    if key.endswith(".json") or ("/" in key and Path(key).is_dir()):
        return load_config_file(key)
    names, entries = _registry()
    canonical = names.get(key.lower())
    if canonical is None:
        short = [a for a in names if len(a) <= 4]  # 1b, 8b, 70b, 405b
        raise suggest(key, names.keys(), "model", known=[*short, *names.values()])
    spec = load_config_file(MODEL_CONFIG_DIR / canonical / "config.json", canonical)
    entry = entries.get(canonical) or {}
    published = entry.get("published_params_b")
    from dataclasses import replace

    return replace(
        spec,
        published_params=float(published) * 1e9 if published else None,
        source=entry.get("source", spec.source),
    )


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)
