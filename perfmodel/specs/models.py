"""Model architectures from Hugging Face config.json files, shipped in model_configs/.

Loading and the registry of shipped models (aliases, model-card sizes, sources); the one
mapping from config.json to ModelSpec is model_families.py, the spec model_spec.py.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import MODEL_CONFIG_DIR
from perfmodel.specs import inputs, yamlio
from perfmodel.specs.model_families import SUPPORTED_MODEL_TYPES, parse_config
from perfmodel.specs.model_spec import ModelSpec

__all__ = ["SUPPORTED_MODEL_TYPES", "ModelSpec", "parse_config", "load_model", "resolve_model"]


def load_config_file(path: str | Path, name: str | None = None) -> ModelSpec:
    """Parse a config.json (a file, or a directory holding one), in any text encoding."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PerfModelError(f"model config not found: {path}")
    data = inputs.read_json(path, "model config (config.json)")
    return parse_config(data, name or config_name(data, path), str(path), _quant_sidecar(path))


def _quant_sidecar(config: Path) -> dict | None:
    """NVIDIA ModelOpt checkpoints describe their quantization in hf_quant_config.json."""
    path = config.parent / "hf_quant_config.json"
    if not path.is_file():
        return None
    return inputs.read_json(path, "quantization config (hf_quant_config.json)")


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
    names, _ = _registry()
    canonical = names.get(key.lower())
    if canonical is None:
        short = [a for a in names if len(a) <= 4]  # 1b, 8b, 70b, 405b
        raise suggest(key, names.keys(), "model", known=[*short, *names.values()])
    return _load_shipped(canonical)


@lru_cache(maxsize=64)
def _load_shipped(canonical: str) -> ModelSpec:
    """A shipped model with its registry entry, read once per process whatever alias asked
    for it ('405b' and 'Llama-3.1-405B' are one config.json)."""
    _, entries = _registry()
    spec = load_config_file(MODEL_CONFIG_DIR / canonical / "config.json", canonical)
    entry = entries.get(canonical) or {}
    published = entry.get("published_params_b")
    active = entry.get("published_active_params_b")
    return replace(
        spec,
        published_params=float(published) * 1e9 if published else None,
        published_active_params=float(active) * 1e9 if active else None,
        source=entry.get("source", spec.source),
    )


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)
