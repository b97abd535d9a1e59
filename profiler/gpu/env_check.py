"""Print the pip names of the modules ``perfmodel profile`` needs that this Python lacks.

Used by measure_h100.sh before ``pip install --no-index --find-links wheelhouse``; the list is
what the CLI's import path really loads (checked with sys.modules after a CPU ``profile --ops``
run): typer and rich (CLI), pydantic (models), PyYAML, numpy, nvidia-ml-py (fingerprint).
"""

import importlib.util

NEEDED = {
    "typer": "typer",
    "rich": "rich",
    "pydantic": "pydantic",
    "yaml": "pyyaml",
    "numpy": "numpy",
    "pynvml": "nvidia-ml-py",
}

print(" ".join(pip for mod, pip in NEEDED.items() if importlib.util.find_spec(mod) is None))
