"""Option groups: the flags of a typed options record, declared once and shared by commands.

A command takes the record as one parameter and names the group in a decorator:

    @app.command()
    @option_group("target", DEPLOYMENT, exclude=("pp",), last=DTYPES_MODE_PROFILE)
    def specdecode(target: DeploymentOptions, batch: BatchOpt = "1", json: JsonOpt = False):
        dep = target.deployment()

The decorator replaces the parameter by one typer option per field of the record (declared
in the group below, each once), placed where the parameter stood; options named in `last`
go just before `--json`, options named in `after={"output_len": (...)}` just after that
parameter of the command (the order `--help` always showed). Defaults are the record's,
unless the command overrides one (`model="70b"`). The command receives the built record.

The groups: DEPLOYMENT (one deployment: predict, specprefill, the MagicDec commands) and
DEPLOYMENT_PINS (what the user fixes of a searched deployment: recommend, capacity);
cli/bench_group.BENCH (what a vLLM benchmark file may not record: validate, calibrate).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Annotated, Any, NamedTuple

import typer

from perfmodel.cli.typer_app import (
    CrossNodeTpOpt,
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
from perfmodel.core.options import DeploymentOptions, DeploymentPins


class OptionGroup(NamedTuple):
    """A record type and the typer declaration (an Annotated type) of its fields, in the
    record's order (option_group checks it); a field without a declaration is no flag (the
    command sets it)."""

    record: type
    options: Mapping[str, Any]


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
        "allow_cross_node_tp": CrossNodeTpOpt,
    },
)
DTYPES_MODE_PROFILE = ("weight_dtype", "kv_dtype", "mode", "profile")

# --- a searched deployment: None = searched ----------------------------------------------
GpuPin = Annotated[
    str | None,
    typer.Option(
        "--gpu",
        help="GPU type of the deployment (default h100, with the best alternative on every "
        "other shipped type; given: that type only).",
    ),
]
NumGpusPin = Annotated[
    int | None,
    typer.Option(
        "--num-gpus",
        "-n",
        min=1,
        help="Pin one replica to these GPUs (TP = --tp or N/--pp, PP = --pp or 1); the search "
        "adds replicas. Default: searched.",
    ),
]
PpPin = Annotated[
    int | None,
    typer.Option("--pp", min=1, help="Pin the pipeline stages per replica (default: searched)."),
]
# the same flag and help as one deployment's; None = searched (the precision policy)
WeightDtypePin = Annotated[str | None, WeightDtypeOpt.__metadata__[0]]
KvDtypePin = Annotated[str | None, KvDtypeOpt.__metadata__[0]]
DEPLOYMENT_PINS = OptionGroup(
    DeploymentPins,
    {
        "model": ModelOpt,
        "gpu": GpuPin,
        "num_gpus": NumGpusPin,
        "tp": TpOpt,
        "pp": PpPin,
        "weight_dtype": WeightDtypePin,
        "kv_dtype": KvDtypePin,
        "mode": ModeOpt,
        "profile": ProfileOpt,
        "allow_cross_node_tp": CrossNodeTpOpt,
    },
)


def option_group(
    param: str,
    group: OptionGroup,
    *,
    exclude: tuple[str, ...] = (),
    last: tuple[str, ...] = (),
    after: Mapping[str, tuple[str, ...]] | None = None,
    **defaults: Any,
) -> Callable[[Callable], Callable]:
    """Replace the command parameter `param` by the group's options (see the module doc)."""
    names = [f.name for f in fields(group.record)]
    if list(group.options) != [n for n in names if n in group.options]:
        raise TypeError(f"{group.record.__name__}: options {list(group.options)} != {names}")
    after = dict(after or {})
    defaults_of = {
        f.name: f.default for f in fields(group.record) if f.default is not MISSING
    } | defaults
    placed = [n for names in after.values() for n in names]
    unknown = (set(exclude) | set(last) | set(placed) | set(defaults)) - set(group.options)
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
        missing = set(after) - set(names)
        if missing:
            raise TypeError(f"{command.__name__} has no parameter(s) {sorted(missing)}")
        head = [option(n) for n in shown if n not in last and n not in placed]
        tail = [option(n) for n in shown if n in last]
        new_params: list[inspect.Parameter] = []
        for p in params:
            if p.name == param:
                new_params += head
            else:
                new_params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            new_params += [option(n) for n in shown if n in after.get(p.name, ())]
        end = next((i for i, p in enumerate(new_params) if p.name == "json"), len(new_params))
        new_params[end:end] = tail

        @functools.wraps(command)
        def run(**kwargs):
            values = {name: kwargs.pop(name) for name in shown}
            kwargs[param] = group.record(
                **{n: values.get(n, defaults_of[n]) for n in group.options}
            )
            return command(**kwargs)

        run.__signature__ = inspect.Signature(new_params)
        run.__annotations__ = {p.name: p.annotation for p in new_params}
        # which parameters each group put there (stacked groups add up; tests read it)
        run.__option_groups__ = {**getattr(command, "__option_groups__", {})} | {
            name: group for name in shown
        }
        return run

    return decorate
