"""Option groups: the flags of a typed options record, declared once and shared by commands.

A command takes the record as one parameter and names the group in a decorator:

    @app.command()
    @option_group("target", DEPLOYMENT, exclude=("pp",), last=DTYPES_MODE_PROFILE)
    def specdecode(target: DeploymentOptions, batch: BatchOpt = "1", json: JsonOpt = False):
        dep = target.deployment()

The decorator replaces the parameter by one typer option per field of the record (declared
in the group below, each once), placed where the parameter stood; options named in `last`
go just before `--json` (the order `--help` always showed). Defaults are the record's,
unless the command overrides one (`model="70b"`). The command receives the built record.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from perfmodel.cli.typer_app import (
    EpOpt,
    GpuOpt,
    KvDtypeOpt,
    ModelOpt,
    ModeOpt,
    NumGpusOpt,
    PpOpt,
    ProfileOpt,
    TpOpt,
    WeightDtypeOpt,
)
from perfmodel.core.options import DeploymentOptions


@dataclass(frozen=True)
class OptionGroup:
    """A record type and the typer declaration (an Annotated type) of each of its fields."""

    record: type
    options: Mapping[str, Any]

    def __post_init__(self):
        names = [f.name for f in fields(self.record)]
        if list(self.options) != names:
            raise TypeError(f"{self.record.__name__}: options {list(self.options)} != {names}")


DEPLOYMENT = OptionGroup(
    DeploymentOptions,
    {
        "model": ModelOpt,
        "gpu": GpuOpt,
        "num_gpus": NumGpusOpt,
        "tp": TpOpt,
        "pp": PpOpt,
        "ep": EpOpt,
        "weight_dtype": WeightDtypeOpt,
        "kv_dtype": KvDtypeOpt,
        "mode": ModeOpt,
        "profile": ProfileOpt,
    },
)
DTYPES_MODE_PROFILE = ("weight_dtype", "kv_dtype", "mode", "profile")


def option_group(
    param: str,
    group: OptionGroup,
    *,
    exclude: tuple[str, ...] = (),
    last: tuple[str, ...] = (),
    **defaults: Any,
) -> Callable[[Callable], Callable]:
    """Replace the command parameter `param` by the group's options (see the module doc)."""
    defaults_of = {
        f.name: f.default for f in fields(group.record) if f.default is not MISSING
    } | defaults
    unknown = (set(exclude) | set(last) | set(defaults)) - set(group.options)
    if unknown:
        raise TypeError(f"{group.record.__name__} has no field(s) {sorted(unknown)}")
    shown = [name for name in group.options if name not in exclude]

    def option(name: str) -> inspect.Parameter:
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=group.options[name],
            default=defaults_of[name],
        )

    def decorate(command: Callable) -> Callable:
        params = list(inspect.signature(command, eval_str=True).parameters.values())
        names = [p.name for p in params]
        if param not in names:
            raise TypeError(f"{command.__name__} has no parameter '{param}'")
        clash = set(shown) & set(names)
        if clash:
            raise TypeError(f"{command.__name__} declares {sorted(clash)} itself")
        at = names.index(param)
        head = [option(n) for n in shown if n not in last]
        tail = [option(n) for n in shown if n in last]
        rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p.name != param]
        before = rest[:at]
        after = rest[at:]
        end = next((i for i, p in enumerate(after) if p.name == "json"), len(after))
        new_params = [*before, *head, *after[:end], *tail, *after[end:]]

        @functools.wraps(command)
        def run(**kwargs):
            values = {name: kwargs.pop(name) for name in shown}
            kwargs[param] = group.record(
                **{n: values.get(n, defaults_of[n]) for n in group.options}
            )
            return command(**kwargs)

        run.__signature__ = inspect.Signature(new_params)
        run.__annotations__ = {p.name: p.annotation for p in new_params}
        return run

    return decorate
