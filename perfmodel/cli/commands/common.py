"""Helpers shared by the command modules: loading the user's deployment, the context check,
formatting numbers."""

from __future__ import annotations

import numpy as np

from perfmodel.cli.typer_app import warn
from perfmodel.core.deployment import Deployment
from perfmodel.core.options import DeploymentOptions
from perfmodel.planners.feasibility import context_verdict, deployment_topology


def deployment_of(options: DeploymentOptions, quiet: bool = False) -> Deployment:
    """Load the user's deployment; the profile's note (e.g. a borrowed profile) and the
    model's notices (e.g. an unknown model_type priced as a family) as warnings."""
    dep = options.deployment()
    if dep.profile.note and not quiet:
        warn(dep.profile.note)
    for note in () if quiet else dep.model.notices:
        warn(note)
    for label in () if quiet else deployment_topology(dep).labels:
        warn(label)
    return dep


def check_context(model, prompt_len, output_len, beyond_context: bool, quiet=False) -> list[str]:
    """The one context-window rule (planners.feasibility.context): exit 2 naming the limit,
    unless --beyond-context, then a warning; returns the labels for --json."""
    verdict = context_verdict(model, prompt_len, output_len, beyond_context).require()
    if not quiet:
        for label in verdict.labels:
            warn(label)
    return list(verdict.labels)


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
