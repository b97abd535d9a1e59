"""Where the data files live, for an editable install and for an installed wheel alike."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_CONFIG_DIR = PACKAGE_DIR / "model_configs"
PROFILE_DIR = PACKAGE_DIR / "profiles"
DATA_DIR = PACKAGE_DIR / "data"


def _sibling_package(name: str) -> Path:
    """A top-level data package (hardware_specs, validation) installed beside perfmodel."""
    candidate = PACKAGE_DIR.parent / name
    if candidate.is_dir():
        return candidate
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"data package '{name}' is not installed beside perfmodel")
    return Path(next(iter(spec.submodule_search_locations)))


HARDWARE_DIR = _sibling_package("hardware_specs")
VALIDATION_DIR = _sibling_package("validation")
PUBLISHED_DIR = VALIDATION_DIR / "published"
MEASUREMENTS_DIR = VALIDATION_DIR / "measurements"
KNOWN_MISSES_PATH = VALIDATION_DIR / "known_misses.yaml"
