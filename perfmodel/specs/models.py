"""Model architectures from Hugging Face config.json files, shipped in model_configs/.

One explicit mapping from config.json to ModelSpec (no guessing from ratios): every required
field is read from the file and a missing one is an error naming the file and the field.
Supported families: Llama, Mistral, Qwen2 (dense, GQA) and Mixtral (sparse MoE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import MODEL_CONFIG_DIR
from perfmodel.specs import yamlio

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


def parse_config(data: dict, name: str, source: str) -> ModelSpec:
    """The one mapping from a config.json dict to a ModelSpec (errors name source and field)."""
    model_type = str(data.get("model_type", "")).lower()
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PerfModelError(
            f"{source}: field 'model_type' is '{model_type or '(missing)'}'; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    for key in _REQUIRED:
        if key not in data:
            raise PerfModelError(f"{source}: missing field '{key}'")
        if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] <= 0:
            raise PerfModelError(f"{source}: field '{key}' must be a positive integer")
    heads = data["num_attention_heads"]
    kv_heads = data.get("num_key_value_heads") or heads
    head_dim = data.get("head_dim") or data["hidden_size"] // heads
    if heads % kv_heads:
        raise PerfModelError(
            f"{source}: num_attention_heads must be a multiple of num_key_value_heads"
        )
    experts = int(data.get("num_local_experts", 1) or 1)
    top_k = int(data.get("num_experts_per_tok", 1) or 1) if experts > 1 else 1
    return ModelSpec(
        name=name,
        model_type=model_type,
        hidden_size=data["hidden_size"],
        num_layers=data["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate_size=data["intermediate_size"],
        vocab_size=data["vocab_size"],
        max_position_embeddings=data["max_position_embeddings"],
        tie_word_embeddings=bool(data.get("tie_word_embeddings", False)),
        attention_bias=bool(data.get("attention_bias", model_type == "qwen2")),
        num_experts=experts,
        experts_per_token=top_k,
        source=source,
        config_path=source,
    )


def load_config_file(path: str | Path, name: str | None = None) -> ModelSpec:
    """Parse a config.json (a file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PerfModelError(f"model config not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PerfModelError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise PerfModelError(f"{path}: expected a JSON object")
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
