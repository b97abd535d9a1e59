"""Every command that names a deployment takes its flags from one shared option group
(perfmodel/cli/option_groups.py), and those flags reach the planners unchanged.

The guard reads each registered command's parameters: a parameter carrying a deployment
flag (--model, --gpu, --num-gpus, --tp, --pp, --ep, --weight-dtype, --kv-dtype, --mode,
--profile, --allow-cross-node-tp) must have been put there by an option group, with the
group's own declaration. A command that declares one itself fails (planted below). The CLI
tests run the real entry point (perfmodel.cli.main) and compare with the library called on
the record the flags build.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated

import pytest
import typer

from perfmodel.cli.bench_group import BENCH
from perfmodel.cli.main import load_commands, main
from perfmodel.cli.option_groups import DEPLOYMENT, DEPLOYMENT_PINS, option_group
from perfmodel.cli.typer_app import JsonOpt, ModelOpt, ModeOpt, app
from perfmodel.core.options import DeploymentOptions, DeploymentPins
from tests import vllm_bench_writer as writer
from tests.conftest import assert_one_line_error, run_cli

DEPLOYMENT_FLAGS = {
    "--model",
    "--target",
    "--gpu",
    "--num-gpus",
    "--tp",
    "--pp",
    "--ep",
    "--weight-dtype",
    "--kv-dtype",
    "--mode",
    "--profile",
    "--allow-cross-node-tp",
}
# a deployment flag outside a group, as the one shared declaration, and why
OUTSIDE_GROUPS = {
    ("calibrate", "mode"): (ModeOpt, "the mode of the profile being fitted, no deployment"),
    ("profile", "model"): (ModelOpt, "required: a measurement sweep has no default model"),
}
# every command that names a deployment (a new one must be added here, and pass)
NAMING_A_DEPLOYMENT = {
    "predict",
    "specdecode",
    "critical-length",
    "min-acceptance",
    "specprefill",
    "recommend",
    "capacity",
    "validate",
    "calibrate",
    "profile",
}


def _flags(parameter: inspect.Parameter) -> set[str]:
    info = parameter.annotation.__metadata__[0]
    names = set(info.param_decls or ())
    if isinstance(info.default, str) and info.default.startswith("-"):
        names.add(info.default)  # typer keeps the first declaration as `default`
    return names


def _problems(commands: dict) -> tuple[list[str], dict[str, int]]:
    """What breaks the rule, and how many deployment flags each command has."""
    problems, counts = [], {}
    for name, callback in commands.items():
        grouped = getattr(callback, "__option_groups__", {})
        for p in inspect.signature(callback, eval_str=True).parameters.values():
            if not _flags(p) & DEPLOYMENT_FLAGS:
                continue
            counts[name] = counts.get(name, 0) + 1
            shared = OUTSIDE_GROUPS.get((name, p.name))
            if shared is not None:
                if p.annotation is not shared[0]:
                    problems.append(f"{name} --{p.name}: not the shared declaration")
            elif p.name not in grouped:
                problems.append(f"{name} declares {sorted(_flags(p))} itself")
            elif p.annotation is not grouped[p.name].options[p.name]:
                problems.append(f"{name} --{p.name}: not its group's declaration")
    return problems, counts


def _registered() -> dict:
    load_commands()
    return {c.name or c.callback.__name__: c.callback for c in app.registered_commands}


def test_every_deployment_flag_comes_from_a_shared_group():
    problems, counts = _problems(_registered())
    assert problems == []
    assert set(counts) == NAMING_A_DEPLOYMENT
    # one deployment: all 11 of DEPLOYMENT's flags (predict), or all but --pp/--ep
    assert counts["predict"] == 11 and counts["specprefill"] == counts["specdecode"] == 9
    assert counts["recommend"] == 8 and counts["capacity"] == 5  # DeploymentPins' variants
    assert counts["validate"] == 5 and counts["calibrate"] == 5  # BENCH (+ --mode)


def test_a_command_declaring_a_deployment_flag_itself_fails_the_guard():
    planted = typer.Typer()

    @planted.command()
    @option_group("target", DEPLOYMENT, exclude=("gpu",))
    def own_gpu(
        *,
        target: DeploymentOptions,
        gpu: Annotated[str, typer.Option("--gpu", help="GPU.")] = "h100",  # the planted clash
        json: JsonOpt = False,
    ) -> None:
        pass

    problems, counts = _problems({"own-gpu": own_gpu})
    assert problems == ["own-gpu declares ['--gpu'] itself"] and counts == {"own-gpu": 11}


def test_the_groups_declare_each_record_field_once():
    for group in (DEPLOYMENT, DEPLOYMENT_PINS, BENCH):
        assert len(set(map(id, group.options.values()))) == len(group.options)


# --- DeploymentPins: the pinned-precision rule (capacity) ------------------------------
SEARCHED = (("bf16", "bf16"), ("fp8", "bf16"), ("fp8", "fp8"))


@pytest.mark.parametrize(
    ("pins", "checkpoint", "expected"),
    [
        (DeploymentPins(), None, SEARCHED),
        (DeploymentPins(), "fp8", (("fp8", "bf16"), ("fp8", "fp8"))),  # never upcast
        (DeploymentPins(weight_dtype="int4"), None, (("int4", "bf16"),)),
        (DeploymentPins(kv_dtype="fp8"), None, (("bf16", "fp8"),)),
        (DeploymentPins(kv_dtype="fp8"), "mxfp4", (("mxfp4", "fp8"),)),  # the checkpoint's
        (DeploymentPins(weight_dtype="fp8", kv_dtype="fp8"), "mxfp4", (("fp8", "fp8"),)),
    ],
)
def test_pinned_precisions(pins, checkpoint, expected):
    assert pins.precisions(checkpoint, SEARCHED) == expected


# --- the shared options through the entry point ---------------------------------------
def _json(capsys, *argv: str) -> dict:
    code = main([*argv, "--json"])
    got = capsys.readouterr()
    assert code == 0, got.err
    return json.loads(got.out)


def test_predict_options_build_the_deployment_the_library_prices(capsys):
    from perfmodel.core.api import predict_arrays

    got = _json(capsys, "predict", "--model", "8b", "--gpu", "h200", "-n", "2", "--tp", "2",
                "--weight-dtype", "fp8", "--kv-dtype", "fp8", "--mode", "roofline",
                "--profile", "ideal", "-b", "4", "-p", "2k", "-o", "64")  # fmt: skip
    dep = DeploymentOptions(model="8b", gpu="h200", num_gpus=2, tp=2, weight_dtype="fp8",
                            kv_dtype="fp8", mode="roofline", profile="ideal").deployment()  # fmt: skip
    cols = predict_arrays(dep, [4.0], [2048.0], [64.0])
    assert (got["gpu"], got["num_gpus"], got["tp"], got["pp"]) == ("h200", 2, 2, 1)
    assert (got["weight_dtype"], got["kv_dtype"], got["mode"], got["profile"]) == (
        "fp8",
        "fp8",
        "roofline",
        "ideal",
    )
    assert got["ttft_s"] == float(cols["ttft_s"][0]) and got["tpot_s"] == float(cols["tpot_s"][0])


def test_specprefill_options_reach_the_target(capsys):
    got = _json(capsys, "specprefill", "--model", "70b", "--gpu", "h200", "-n", "4",
                "--weight-dtype", "fp8", "--kv-dtype", "fp8", "--speculator", "1b",
                "-b", "1", "-p", "8k", "--keep-rate", "0.3")  # fmt: skip
    assert (got["gpu"], got["num_gpus"], got["tp"]) == ("h200", 4, 4)
    assert (got["weight_dtype"], got["kv_dtype"], got["speculator_weight_dtype"]) == (
        "fp8",
        "fp8",
        "bf16",  # the helper's own default, not the target's
    )


def test_recommend_pins_reach_the_planner(capsys):
    from perfmodel.core.jsonable import json_ready
    from perfmodel.planners.recommend import recommend

    got = _json(capsys, "recommend", "--model", "8b", "--bsz", "4", "--gpu", "h200",
                "--num-gpus", "2", "--pp", "1", "-p", "2k", "-o", "128", "--mode", "roofline")  # fmt: skip
    pins = DeploymentPins("8b", gpu="h200", num_gpus=2, pp=1, mode="roofline")
    plan = recommend(pins, 4, 2048, 128, alternatives=[])
    assert got == json.loads(json.dumps(json_ready(plan.as_dict())))
    d = got["deployment"]
    assert (d["gpu"], d["num_gpus"], d["tp"], d["pp"], got["mode"]) == ("h200", 2, 2, 1, "roofline")
    assert got["alternatives"] == []  # --gpu pins the type


def test_capacity_dtype_pins_fix_every_option(capsys):
    got = _json(capsys, "capacity", "--model", "8b", "--qps", "1", "-p", "1k", "-o", "64",
                "--gpus", "h100", "--weight-dtype", "fp8", "--kv-dtype", "fp8",
                "--mode", "roofline")  # fmt: skip
    assert got["options"] and {(o["weight_dtype"], o["kv_dtype"]) for o in got["options"]} == {
        ("fp8", "fp8")
    }


def test_validate_bench_options_reach_the_replay(tmp_path, capsys):
    """The flags build the BenchOptions the library replays with: the same prediction, on
    the named deployment (h200, TP2) rather than the file's default of one GPU."""
    from perfmodel.accuracy.vllm_setup import bench_case
    from perfmodel.core.bench_options import BenchOptions

    path = writer.write(tmp_path / "lat.json", writer.latency_result([0.9, 1.0, 1.1]))
    got = _json(capsys, "validate", "--measurements", path, "--gpu", "h200", "-n", "2",
                "--tp", "2", "--batch", "8", "--prompt-len", "32", "--output-len", "128")  # fmt: skip
    options = BenchOptions(gpu="h200", num_gpus=2, tp=2, batch=8, prompt_len=32, output_len=128)
    case = bench_case(path, options)
    (row,) = case.replay().rows()
    assert (case.dep.gpu.name, case.dep.num_gpus, case.dep.tp) == ("h200", 2, 2)
    (result,) = got["vllm_results"]
    assert [r["predicted"] for r in result["rows"]] == [row["predicted"]]
    one_gpu = bench_case(path, BenchOptions(gpu="h200", batch=8, prompt_len=32, output_len=128))
    assert one_gpu.replay().rows()[0]["predicted"] != row["predicted"]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("predict", "--tp", "0"), ("--tp",)),
        (("recommend", "--num-gpus", "0"), ("--num-gpus",)),
        (("specprefill", "--mode", "fast"), ("--mode", "roofline")),
        (("capacity", "--qps", "1", "--kv-dtype", "fp9"), ("--kv-dtype", "kv dtype", "fp9", "fp8")),
        (("predict", "--weight-dtype", "int3"), ("--weight-dtype", "int3", "mxfp4")),
        (("specdecode", "--kv-dtype", "fp9"), ("--kv-dtype", "fp9", "bf16")),
        (("specprefill", "--speculator-weight-dtype", "fp9"), ("--speculator-weight-dtype",)),
        (("validate", "--gpu", "h100", "--batch", "2"), ("--gpu, --batch", "FILE.json")),
    ],
)
def test_a_bad_shared_option_is_one_line_and_exit_2(argv, fragments, capsys):
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]


def test_a_bad_shared_option_through_the_console_script():
    assert_one_line_error(run_cli("predict", "--pp", "0"), "--pp")
    assert_one_line_error(run_cli("predict", "--kv-dtype", "fp9"), "--kv-dtype")


def test_recommend_refuses_pinned_dtypes():
    """recommend searches the precision: a DeploymentPins with a dtype is refused, not ignored."""
    from perfmodel.errors import PerfModelError
    from perfmodel.planners.recommend import recommend

    for pins in (DeploymentPins("8b", weight_dtype="fp8"), DeploymentPins("8b", kv_dtype="fp8")):
        with pytest.raises(PerfModelError, match="cannot be pinned"):
            recommend(pins, 1)
