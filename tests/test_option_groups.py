"""Option groups (perfmodel/cli/option_groups.py): one declaration of the deployment flags,
expanded into each command's signature, handed to the command as one typed record."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

from perfmodel.cli.option_groups import DEPLOYMENT, DTYPES_MODE_PROFILE, OptionGroup, option_group
from perfmodel.cli.typer_app import GpuOpt, JsonOpt, ModelOpt
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
        *("model", "gpu", "num_gpus", "tp", "allow_cross_node_tp", "extra"),
        *DTYPES_MODE_PROFILE,
        "json",
    ]


def test_a_command_cannot_redeclare_a_group_option():
    with pytest.raises(TypeError, match="gpu"):

        @option_group("target", DEPLOYMENT)
        def clash(*, target: DeploymentOptions, gpu: str = "h100") -> None:
            pass


def test_a_group_declares_its_options_in_the_records_order():
    swapped = OptionGroup(DeploymentOptions, {"gpu": GpuOpt, "model": ModelOpt})
    with pytest.raises(TypeError, match="DeploymentOptions: options"):
        option_group("target", swapped)
    option_group("target", OptionGroup(DeploymentOptions, {"model": ModelOpt, "gpu": GpuOpt}))


def test_unknown_field_names_fail_at_declaration():
    with pytest.raises(TypeError, match="gpus"):
        option_group("target", DEPLOYMENT, gpus="h100")


def test_deployment_options_load_the_same_deployment_as_make_deployment():
    from perfmodel.core.deployment import make_deployment

    opts = DeploymentOptions(model="70b", gpu="h200", num_gpus=8, tp=4, pp=2, weight_dtype="fp8")
    assert opts.deployment() == make_deployment("70b", "h200", 8, 4, "fp8", "bf16", pp=2)


def test_cross_node_tp_flag_reaches_the_record():
    app, _ = _app(exclude=("pp", "ep"))
    seen.clear()
    result = CliRunner().invoke(app, ["show", "--allow-cross-node-tp"])
    assert result.exit_code == 0, result.output
    assert seen == [DeploymentOptions(allow_cross_node_tp=True)]


def test_after_places_fields_behind_a_named_parameter():
    def show(*, first: int = 0, target: DeploymentOptions, middle: int = 0, json: JsonOpt = False):
        pass

    placed = option_group(
        "target", DEPLOYMENT, exclude=("ep",), after={"middle": ("pp", "mode")}, last=("profile",)
    )(show)
    names = list(inspect.signature(placed).parameters)
    assert names == [
        *("first", "model", "gpu", "num_gpus", "tp", "weight_dtype", "kv_dtype"),
        *("allow_cross_node_tp", "middle", "pp", "mode", "profile", "json"),
    ]
    assert set(placed.__option_groups__) == set(DEPLOYMENT.options) - {"ep"}


def test_after_names_a_parameter_the_command_has():
    with pytest.raises(TypeError, match="nowhere"):

        @option_group("target", DEPLOYMENT, after={"nowhere": ("pp",)})
        def show(*, target: DeploymentOptions) -> None:
            pass
