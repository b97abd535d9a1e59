"""Helpers shared by the command modules: building a deployment, formatting numbers."""

from __future__ import annotations

import numpy as np

from perfmodel.cli.typer_app import warn
from perfmodel.core.deployment import Deployment
from perfmodel.core.options import DeploymentOptions


def deployment(
    model, gpu, num_gpus, tp, weight_dtype, kv_dtype, mode, profile, quiet=False, pp=1, ep=1
) -> Deployment:
    """deployment_of for commands that still pass the options one by one."""
    options = DeploymentOptions(
        model=model,
        gpu=gpu,
        num_gpus=num_gpus,
        tp=tp,
        pp=pp,
        ep=ep,
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        mode=mode,
        profile=profile,
    )
    return deployment_of(options, quiet)


def deployment_of(options: DeploymentOptions, quiet: bool = False) -> Deployment:
    """Load the user's deployment; the profile's note (e.g. a borrowed profile) and the
    model's notices (e.g. an unknown model_type priced as a family) as warnings."""
    dep = options.deployment()
    if dep.profile.note and not quiet:
        warn(dep.profile.note)
    for note in () if quiet else dep.model.notices:
        warn(note)
    return dep


def fmt_time(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "-"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"
