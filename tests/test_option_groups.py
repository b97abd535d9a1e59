"""Option groups (perfmodel/cli/option_groups.py): one declaration of the deployment flags,
expanded into each command's signature, handed to the command as one typed record."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

from perfmodel.cli.option_groups import DEPLOYMENT, DTYPES_MODE_PROFILE, option_group
from perfmodel.cli.typer_app import JsonOpt
from perfmodel.core.options import DeploymentOptions

seen: list[DeploymentOptions] = []


def _app(**group_kwargs) -> tuple[typer.Typer, object]:
    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command keeps `app` a group, like perfmodel's
        pass

    @app.command()
    @option_group("target", DEPLOYMENT, **group_kwargs)
    def show(*, target: DeploymentOptions, extra: int = 0, json: JsonOpt = False) -> None:
        seen.append(target)

    return app, show


def test_flags_become_one_record_with_record_defaults_elsewhere():
    app, _ = _app(exclude=("pp", "ep"), model="70b")
    seen.clear()
    result = CliRunner().invoke(
        app, ["show", "--gpu", "a100", "-n", "4", "--kv-dtype", "fp8", "--extra", "3"]
    )
    assert result.exit_code == 0, result.output
    assert seen == [DeploymentOptions(model="70b", gpu="a100", num_gpus=4, kv_dtype="fp8")]


def test_excluded_flag_is_not_accepted():
    app, _ = _app(exclude=("pp", "ep"))
    result = CliRunner().invoke(app, ["show", "--pp", "2"])
    assert result.exit_code == 2 and "--pp" in result.output


def test_options_stand_where_the_record_stood_and_last_ones_before_json():
    _, show = _app(exclude=("pp", "ep"), last=DTYPES_MODE_PROFILE)
    names = list(inspect.signature(show).parameters)
    assert names == [
        *("model", "gpu", "num_gpus", "tp", "extra"),
        *DTYPES_MODE_PROFILE,
        "json",
    ]


def test_a_command_cannot_redeclare_a_group_option():
    with pytest.raises(TypeError, match="gpu"):

        @option_group("target", DEPLOYMENT)
        def clash(*, target: DeploymentOptions, gpu: str = "h100") -> None:
            pass


def test_unknown_field_names_fail_at_declaration():
    with pytest.raises(TypeError, match="gpus"):
        option_group("target", DEPLOYMENT, gpus="h100")


def test_deployment_options_load_the_same_deployment_as_make_deployment():
    from perfmodel.core.deployment import make_deployment

    opts = DeploymentOptions(model="70b", gpu="h200", num_gpus=8, tp=4, pp=2, weight_dtype="fp8")
    assert opts.deployment() == make_deployment("70b", "h200", 8, 4, "fp8", "bf16", pp=2)
