"""perfmodel: analytical performance model and profiler for LLM inference.

Public API: `predict(...)` (a DataFrame, one row per configuration), `make_deployment`,
`load_model`, `load_gpu`, `load_profile`. Submodules hold the planners (specprefill,
specdecode), recommend, capacity, calibrate and validate.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["predict", "make_deployment", "load_model", "load_gpu", "load_profile", "__version__"]


def __getattr__(name):  # lazy: keep `import perfmodel` cheap for the CLI
    if name == "predict":
        from perfmodel.core.api import predict

        return predict
    if name == "make_deployment":
        from perfmodel.core.deployment import make_deployment

        return make_deployment
    if name == "load_model":
        from perfmodel.specs.models import load_model

        return load_model
    if name == "load_gpu":
        from perfmodel.specs.hardware import load_gpu

        return load_gpu
    if name == "load_profile":
        from perfmodel.specs.profile import load_profile

        return load_profile
    raise AttributeError(name)
