"""Hostile inputs through the real entry point (perfmodel.cli.main.main with argv).

Every case either fails cleanly (exit 2, exactly one line on stderr starting with 'error:',
no traceback) or runs (exit 0) with a warning on stderr that names the cause. The table
spans every command: sizes, lists, rates, files (missing, directory, empty, header-only,
binary), model configs, measurement CSVs, profile and GPU YAMLs, workloads, output paths.
A case whose fix is pending can be marked a strict xfail (`error(..., xfail=reason)`), so it
turns red the moment it is fixed and the mark must go; none is pending now.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmodel.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
MEASURED = Path(__file__).resolve().parent.parent / "validation" / "published"
HEADER = (
    "model,gpu,num_gpus,tp,weight_dtype,kv_dtype,batch_size,prompt_len,output_len,"
    "ttft_s,tpot_s,status"
)
ROW = "Llama-3.1-8B,h100,1,1,bf16,bf16,{b},{p},128,{ttft},{tpot},ok"


def _rows(n: int = 12) -> list[str]:
    """n plausible measured rows of Llama-3.1-8B on one H100."""
    return [
        ROW.format(b=1 + i % 4, p=512 * (1 + i % 3), ttft=0.05 + 0.01 * i, tpot=0.008)
        for i in range(n)
    ]


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _bad_row(column: str, value: str, n: int = 12, count: int = 1) -> str:
    """A measurement CSV of n good rows whose first `count` rows have `value` in `column`."""
    index = HEADER.split(",").index(column)
    rows = []
    for i, row in enumerate(_rows(n)):
        cells = row.split(",")
        if i < count:
            cells[index] = value
        rows.append(",".join(cells))
    return _csv(*rows)


CONFIG_DIR = Path(__file__).resolve().parent.parent / "perfmodel" / "model_configs"
CONFIG = json.loads((CONFIG_DIR / "Llama-3.1-8B" / "config.json").read_text())


def _config(**changes) -> str:
    """Llama-3.1-8B's config.json with fields changed (None: removed)."""
    data = {**CONFIG, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None})


FILES: dict[str, str | bytes] = {
    "empty.csv": "",
    "header.csv": HEADER + "\n",
    "binary.csv": bytes(range(256)) * 8,
    "good.csv": _csv(*_rows()),
    "one_row.csv": _csv(*_rows(1)),
    "text_in_batch.csv": _bad_row("batch_size", "many"),
    "no_model_col.csv": _csv(
        *[r.split(",", 1)[1] for r in _rows()], header=HEADER.split(",", 1)[1]
    ),
    "no_times.csv": _csv(
        *[",".join(r.split(",")[:9]) for r in _rows()], header=",".join(HEADER.split(",")[:9])
    ),
    "inf_ttft.csv": _bad_row("ttft_s", "inf", count=2),
    "neg_ttft.csv": _bad_row("ttft_s", "-0.5", count=3),
    "zero_tpot.csv": _bad_row("tpot_s", "0"),
    "nan_ttft.csv": _bad_row("ttft_s", "", count=3),
    "frac_batch.csv": _bad_row("batch_size", "2.5"),
    "zero_batch.csv": _bad_row("batch_size", "0"),
    "all_nan.csv": _bad_row("ttft_s", "", count=12).replace(",0.008,ok", ",,ok"),
    "unknown_model.csv": _bad_row("model", "Llama-9B"),
    "unknown_gpu.csv": _bad_row("gpu", "tpu-v9"),
    "unknown_profile.csv": _csv(
        *[r + ",nosuch-profile" for r in _rows()], header=HEADER + ",profile"
    ),
    "bad_tp.csv": _bad_row("tp", "3"),
    "sp_no_speculator.csv": _csv(*[r + ",specprefill" for r in _rows()], header=HEADER + ",method"),
    "all_oom.csv": _csv(*[r.replace(",ok", ",oom") for r in _rows()]),
    "malformed.json": '{"model_type": "llama", "hidden_size": ',
    "array.json": "[1, 2, 3]",
    "no_hidden.json": _config(hidden_size=None),
    "zero_heads.json": _config(num_attention_heads=0),
    "float_layers.json": _config(num_hidden_layers=31.5),
    "bad_type.json": _config(model_type="rwkv", intermediate_size=None),
    "bad_kv_heads.json": _config(num_key_value_heads=7),
    "config.txt": "not json at all",
    "malformed.yaml": "name: x\nefficiency: [1, 2\n",
    "noname.yaml": "efficiency:\n  matmul: 0.5\n",
    "list.yaml": "- 1\n- 2\n",
    "unknown_field.yaml": "name: p\nefficiency:\n  warp_speed: 0.5\n",
    "eff_above_1.yaml": "name: p\nefficiency:\n  matmul: 1.5\n",
    "neg_overhead.yaml": "name: p\noverhead:\n  per_step_us: -3\n",
    "bad_mode.yaml": "name: p\nmode: fast\n",
    "gpu_malformed.yaml": "name: g\nmemory_bytes: [\n",
    "gpu_empty.yaml": "",
    "wl_empty.csv": "",
    "wl_header.csv": "prompt_len,output_len,arrival_time\n",
    "wl_missing_col.csv": "prompt_len,output_len\n100,10\n200,20\n",
    "wl_text.csv": "prompt_len,output_len,arrival_time\nabc,10,0\n100,10,1\n",
    "wl_neg.csv": "prompt_len,output_len,arrival_time\n-100,10,0\n100,10,1\n",
    "wl_binary.csv": bytes(range(256)) * 8,
    "wl_bad.jsonl": '{"prompt_len": 1\n',
    "wl.parquet": "x",
    "wl_one_row.csv": "prompt_len,output_len,arrival_time\n100,10,0\n",
}
FILES["wl_same_time.csv"] = "prompt_len,output_len,arrival_time\n100,10,5\n100,10,5\n"
MIXTRAL = json.loads(
    (CONFIG_DIR / "Mixtral-8x7B" / "config.json").read_text()  # a MoE config to break
)
GPU_YAML = (Path(__file__).resolve().parent.parent / "hardware_specs" / "h100-sxm.yaml").read_text()
PROFILE_YAML = (CONFIG_DIR.parent / "profiles" / "vllm-0.6.3-h100.yaml").read_text()
FILES.update(
    {
        # encodings: what Windows PowerShell and Excel write
        "utf16.json": _config().encode("utf-16"),
        "bom.json": _config().encode("utf-8-sig"),
        "gpu_utf16.yaml": GPU_YAML.encode("utf-16"),
        "gpu_binary.yaml": bytes(range(256)) * 4,
        "profile_binary.yaml": bytes(range(255, -1, -1)) * 4,
        "profile_utf16.yaml": PROFILE_YAML.encode("utf-16"),
        # numbers a config.json should never have, and silent reinterpretations
        "hidden_10e400.json": _config(hidden_size=10**400),
        "hidden_1e12.json": _config(hidden_size=1e12),
        "kv_heads_0.json": _config(num_key_value_heads=0),
        "tie_string.json": _config(tie_word_embeddings="false"),
        "experts_0.json": json.dumps({**MIXTRAL, "num_local_experts": 0}),
        "top_k_over.json": json.dumps(
            {**MIXTRAL, "num_local_experts": 4, "num_experts_per_tok": 8}
        ),
        "gpu_no_name.yaml": GPU_YAML.replace("name: h100-sxm", 'name: ""'),
        "gpu_inf_bw.yaml": GPU_YAML.replace("hbm_bandwidth_tbps: 3.35", "hbm_bandwidth_tbps: .inf"),
        "gpu_old_schema.yaml": GPU_YAML.split("inter_node_kind")[0]
        + "sources:\n  peak_tflops: x\n",
        "wl_fraction.csv": "prompt_len,output_len,arrival_time\n100.5,10,0\n100,10,1\n",
        "wl_fraction.jsonl": '{"prompt_len": 100, "output_len": 9.5, "arrival_time": 0}\n'
        '{"prompt_len": 100, "output_len": 10, "arrival_time": 1}\n',
        "nan_unknown_gpu.csv": _bad_row("ttft_s", "", count=1).replace(",h100,", ",tpu-v9,", 1),
    }
)


def error(*argv: str, says: str = "", xfail: str = ""):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(list(argv), 2, says, marks=marks, id=" ".join(argv)[:90])


def warns(*argv: str, says: str):
    return pytest.param(list(argv), 0, says, id="warn " + " ".join(argv)[:85])


def runs(*argv: str):
    """A legitimate run: exit 0, JSON on stdout, nothing on stderr."""
    return pytest.param(list(argv), 0, None, id="runs " + " ".join(argv)[:85])


SMALL = ("--model", "8b", "--num-gpus", "1")
TINY = str(FIXTURES / "profiler" / "tiny-llama" / "config.json")
PROFILE = (
    "--model",
    TINY,
    "--runner",
    "torch",
    "--device",
    "cpu",
)  # every case below fails before measuring
CASES = [
    # --- sizes --------------------------------------------------------------------------
    error("predict", "--batch", "2.5", says="whole number"),
    error("predict", "--batch", "0", says="positive"),
    error("predict", "--batch", "-1", says="--batch"),
    error("predict", "--batch", "abc", says="cannot read"),
    error("predict", "--batch", "1,,2", says="empty item"),
    error("predict", "--batch", "1,", says="empty item"),
    error("predict", "--batch", "", says="--batch"),
    error("predict", "--batch", "4kk", says="cannot read"),
    error("predict", "--batch", "1e3", says="cannot read"),
    error("predict", "--batch", "nan", says="cannot read"),
    error("predict", "--batch", "inf", says="cannot read"),
    error("predict", "--prompt-len", "0", says="positive"),
    error("predict", "--prompt-len", "0.1k", says="whole number"),
    error("predict", "--prompt-len", "-4k", says="--prompt-len"),
    error("predict", "--output-len", "0", says="positive"),
    error("predict", "--output-len", "1.5", says="whole number"),
    error("specdecode", *SMALL, "--batch", "1,,8", says="empty item"),
    error("specdecode", *SMALL, "--prompt-len", "8k,", says="empty item"),
    error("specdecode", *SMALL, "--budgets", "0", says="positive"),
    error("critical-length", *SMALL, "--batch", "0.5", says="whole number"),
    error("critical-length", *SMALL, "--max-len", "zero", says="cannot read"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--batch", "2.5", says="whole number"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--prompt-len", "1,,2", says="empty item"),
    # --- lists where one value is taken ---------------------------------------------------
    error("recommend", "--batch", "1,64", says="one value"),
    error("recommend", "--prompt-len", "4k,8k", says="one value"),
    error("specprefill", "--prompt-len", "32k,128k", says="one value"),
    error("specprefill", "--batch", "1,2", says="one value"),
    error("capacity", "--qps", "1", "--prompt-len", "1k,2k", says="one value"),
    error("min-acceptance", *SMALL, "--batch", "1,2", says="one --batch"),
    error("min-acceptance", *SMALL, "--prompt-len", "4k,8k", says="one --prompt-len"),
    # --- rates ----------------------------------------------------------------------------
    error("specprefill", "--keep-rate", "0", says="keep"),
    error("specprefill", "--keep-rate", "1.5", says="keep"),
    error("specprefill", "--keep-rate", "-0.1", says="keep"),
    error("specprefill", "--keep-rate", "nan", says="keep-rate"),
    error("specprefill", "--keep-rate", "inf", says="keep-rate"),
    error("specprefill", "--keep-rate", "abc", says="cannot read"),
    error("specprefill", "--keep-rate", "0.1,,0.2", says="empty item"),
    error("specdecode", *SMALL, "--acceptance-rate", "1", says="acceptance"),
    error("specdecode", *SMALL, "--acceptance-rate", "1.5", says="acceptance"),
    error("specdecode", *SMALL, "--acceptance-rate", "-0.1", says="acceptance"),
    error("specdecode", *SMALL, "--acceptance-rate", "nan", says="acceptance"),
    error("specdecode", *SMALL, "--acceptance-len", "0.5", says="acceptance"),
    error("specdecode", *SMALL, "--acceptance-len", "nan", says="acceptance"),
    error("min-acceptance", *SMALL, "--gamma", "0", says="gamma"),
    error("recommend", *SMALL, "--acceptance-rate", "1", says="acceptance"),
    error("recommend", *SMALL, "--acceptance-rate", "-1", says="acceptance"),
    error("recommend", *SMALL, "--acceptance-rate", "nan", says="acceptance"),
    error("recommend", *SMALL, "--max-quality-drop", "-1", says="quality"),
    error("specprefill", "--max-quality-drop", "-1", says="quality"),
    error("specprefill", "--max-quality-drop", "nan", says="quality"),
    error("capacity", "--qps", "0", says="--qps"),
    error("capacity", "--qps", "-1", says="--qps"),
    error("capacity", "--qps", "nan", says="--qps"),
    error("capacity", "--qps", "inf", says="--qps"),
    error("capacity", "--qps", "1", "--utilization", "0", says="utilization"),
    error("capacity", "--qps", "1", "--utilization", "1.5", says="utilization"),
    error("capacity", "--qps", "1", "--slo-ttft", "0", says="slo"),
    error("capacity", "--qps", "1", "--slo-tpot", "-1", says="slo"),
    error("capacity", "--qps", "1", "--prices", "h100=abc", says="price"),
    error("capacity", "--qps", "1", "--prices", "h100=-1", says="price"),
    error("capacity", "--qps", "1", "--prices", "nosuchgpu=3", says="gpu"),
    error("capacity", "--qps", "1", "--gpus", "h100,,a100", says="empty item"),
    error("capacity", "--qps", "1", "--gpus", "tpu", says="gpu"),
    error("recommend", *SMALL, "--slo-ttft", "-1", says="slo"),
    error("specprefill", "--slo-ttft", "0", says="slo"),
    # --- names and parallelism -----------------------------------------------------------
    error("predict", "--model", "nosuch", says="unknown model"),
    error("predict", "--gpu", "nosuch", says="unknown gpu"),
    error("predict", "--weight-dtype", "fp4", says="fp4"),
    error("predict", "--kv-dtype", "int4", says="int4"),
    error("predict", "--mode", "fast", says="mode"),
    error("predict", "--profile", "nosuch", says="unknown profile"),
    error("predict", "--num-gpus", "8", "--tp", "3", says="--tp"),
    error("predict", "--num-gpus", "0", says="--num-gpus"),
    error("predict", "--tp", "0", says="--tp"),
    error("predict", "--num-gpus", "abc", says="--num-gpus"),
    error("specdecode", *SMALL, "--draft", "nosuch", says="unknown model"),
    error("specdecode", *SMALL, "--draft-kv", "foo:12", says="draft"),
    error("specdecode", *SMALL, "--draft-kv", "streamingllm:0", says="budget"),
    error("specdecode", *SMALL, "--draft-kv", "snapkv:abc", says="budget"),
    error("specdecode", *SMALL, "--gamma", "0", says="gamma"),
    error("specprefill", "--speculator", "nosuch", says="unknown model"),
    error("list", "foo", says="foo"),
    error("validate", "--table", "nosuch", says="unknown table"),
    error("validate", "--table", "specprefill_8b_batch1,", says="empty item"),
    error(
        "calibrate",
        "--table",
        "specprefill_8b_batch1",
        "--params",
        "efficiency.matmul,,",
        says="empty item",
    ),  # fmt: skip
    error("recommend", *SMALL, "--draft", "1b,,self", says="draft"),
    error("specdecode", *SMALL, "--draft", "1b,,self", says="draft"),
    error("calibrate", says="--measurements"),
    error("calibrate", "--table", "specprefill_8b_batch1", "--params", "foo", says="unknown"),
    error("calibrate", "--table", "specprefill_8b_batch1", "--mode", "fast", says="mode"),
    error("calibrate", "--table", "specprefill_8b_batch1", "--base", "nosuch", says="profile"),
    error("app", "--port", "0", says="--port"),
    error("app", "--port", "70000", says="--port"),
    error("app", "--port", "http", says="--port"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--runner", "jax", says="runner"),
    error(
        "profile",
        *PROFILE,
        "--out",
        "{tmp}/p.csv",
        "--runner",
        "torch",
        "--device",
        "tpu",
        says="device",
    ),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--repeats", "0", says="repeats"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--model", "nosuch", says="unknown model"),
    error("predict", "--no-such-option", says="no-such-option"),
    error("frobnicate", says="frobnicate"),
    # --- model configs ----------------------------------------------------------------------
    error("predict", "--model", "{tmp}/missing.json", says="not found"),
    error("predict", "--model", "{tmp}/malformed.json", says="malformed json"),
    error("predict", "--model", "{tmp}/array.json", says="json object"),
    error("predict", "--model", "{tmp}/no_hidden.json", says="hidden_size"),
    error("predict", "--model", "{tmp}/zero_heads.json", says="num_attention_heads"),
    error("predict", "--model", "{tmp}/float_layers.json", says="num_hidden_layers"),
    error("predict", "--model", "{tmp}/bad_type.json", says="intermediate_size"),
    error("predict", "--model", "{tmp}/bad_kv_heads.json", says="num_key_value_heads"),
    error("predict", "--model", "{tmp}/emptydir", says="not found"),
    error("specprefill", "--speculator", "{tmp}/malformed.json", says="malformed json"),
    error("specdecode", *SMALL, "--draft", "{tmp}/no_hidden.json", says="hidden_size"),
    # --- profile and GPU YAMLs --------------------------------------------------------------
    error("predict", "--profile", "{tmp}/malformed.yaml", says="malformed.yaml"),
    error("predict", "--profile", "{tmp}/noname.yaml", says="name"),
    error("predict", "--profile", "{tmp}/list.yaml", says="list.yaml"),
    error("predict", "--profile", "{tmp}/unknown_field.yaml", says="warp_speed"),
    error("predict", "--profile", "{tmp}/eff_above_1.yaml", says="efficiency.matmul"),
    error("predict", "--profile", "{tmp}/neg_overhead.yaml", says="overhead.per_step_us"),
    error("predict", "--profile", "{tmp}/bad_mode.yaml", says="mode"),
    error("predict", "--profile", "{tmp}/missing.yaml", says="not found"),
    error("predict", "--gpu", "{tmp}/gpu_malformed.yaml", says="gpu_malformed.yaml"),
    error("predict", "--gpu", "{tmp}/gpu_empty.yaml", says="gpu_empty.yaml"),
    error("validate", "--profile", "{tmp}/malformed.yaml", says="malformed.yaml"),
    # --- measurement CSVs -------------------------------------------------------------------
    error("validate", "--measurements", "{tmp}/missing.csv", says="not found"),
    error("validate", "--measurements", "{tmp}", says="directory"),
    error("validate", "--measurements", "{tmp}/empty.csv", says="not a readable csv"),
    error("validate", "--measurements", "{tmp}/header.csv", says="no data rows"),
    error("validate", "--measurements", "{tmp}/binary.csv", says="binary.csv"),
    error("validate", "--measurements", "{tmp}/text_in_batch.csv", says="batch_size"),
    error("validate", "--measurements", "{tmp}/no_model_col.csv", says="model"),
    error("validate", "--measurements", "{tmp}/no_times.csv", says="ttft_s or tpot_s"),
    error("validate", "--measurements", "{tmp}/all_nan.csv", says="no rows"),
    error("validate", "--measurements", "{tmp}/unknown_model.csv", says="unknown model"),
    error("validate", "--measurements", "{tmp}/unknown_gpu.csv", says="unknown gpu"),
    error("validate", "--measurements", "{tmp}/unknown_profile.csv", says="nosuch-profile"),
    error("validate", "--measurements", "{tmp}/bad_tp.csv", says="--tp"),
    error("validate", "--measurements", "{tmp}/sp_no_speculator.csv", says="speculator"),
    error("validate", "--measurements", "{tmp}/all_oom.csv", says="no rows with status ok"),
    warns(
        "validate", "--measurements", "{tmp}/inf_ttft.csv", says="dropped 2 rows: infinite ttft_s"
    ),
    warns(
        "validate", "--measurements", "{tmp}/neg_ttft.csv", says="dropped 3 rows: negative ttft_s"
    ),
    warns("validate", "--measurements", "{tmp}/zero_tpot.csv", says="dropped 1 row: zero tpot_s"),
    warns("validate", "--measurements", "{tmp}/nan_ttft.csv", says="dropped 3 rows: NaN ttft_s"),
    warns("validate", "--measurements", "{tmp}/frac_batch.csv", says="non-integer batch_size"),
    warns("validate", "--measurements", "{tmp}/zero_batch.csv", says="non-positive batch_size"),
    error("calibrate", "--measurements", "{tmp}/missing.csv", says="not found"),
    error("calibrate", "--measurements", "{tmp}/header.csv", says="no data rows"),
    error("calibrate", "--measurements", "{tmp}/empty.csv", says="not a readable csv"),
    error("calibrate", "--measurements", "{tmp}/binary.csv", says="binary.csv"),
    error("calibrate", "--measurements", "{tmp}/one_row.csv", says="cannot determine"),
    error("calibrate", "--measurements", "{tmp}/unknown_profile.csv", says="nosuch-profile"),
    warns("calibrate", "--measurements", "{tmp}/nan_ttft.csv", says="dropped 3 rows: NaN ttft_s"),
    warns(
        "calibrate",
        "--measurements",
        "{tmp}/good.csv",
        "--params",
        "efficiency.matmul,efficiency.comm",
        says="cannot identify efficiency.comm",
    ),  # fmt: skip
    # --- workloads ------------------------------------------------------------------------
    error("capacity", "--workload", "{tmp}/missing.csv", says="not found"),
    error("capacity", "--workload", "{tmp}/wl_empty.csv", says="wl_empty.csv"),
    error("capacity", "--workload", "{tmp}/wl_header.csv", says="wl_header.csv"),
    error("capacity", "--workload", "{tmp}/wl_missing_col.csv", says="arrival_time"),
    error("capacity", "--workload", "{tmp}/wl_text.csv", says="prompt_len"),
    error("capacity", "--workload", "{tmp}/wl_neg.csv", says="prompt_len"),
    error("capacity", "--workload", "{tmp}/wl_binary.csv", says="wl_binary.csv"),
    error("capacity", "--workload", "{tmp}/wl_bad.jsonl", says="wl_bad.jsonl"),
    error("capacity", "--workload", "{tmp}/wl.parquet", says=".csv or .jsonl"),
    error("capacity", "--workload", "{tmp}/wl_one_row.csv", says="wl_one_row.csv"),
    error("capacity", "--workload", "{tmp}/wl_same_time.csv", says="arrival"),
    error("capacity", "--workload", "{tmp}", says="not found"),
    # --- issue 23: encodings, extremes, reinterpretations ------------------------------------
    runs("predict", "--model", "{tmp}/utf16.json"),
    runs("predict", "--model", "{tmp}/bom.json"),
    runs("predict", "--gpu", "{tmp}/gpu_utf16.yaml"),
    runs("predict", "--profile", "{tmp}/profile_utf16.yaml"),
    error("predict", "--gpu", "{tmp}/gpu_binary.yaml", says="gpu_binary.yaml: not a text"),
    error("predict", "--profile", "{tmp}/profile_binary.yaml", says="profile_binary.yaml"),
    error("predict", "--model", "{tmp}/hidden_10e400.json", says="'hidden_size' must be"),
    error("predict", "--model", "{tmp}/hidden_1e12.json", says="from 1 to 1048576"),
    error("predict", "--model", "{tmp}/kv_heads_0.json", says="'num_key_value_heads'"),
    error("predict", "--model", "{tmp}/tie_string.json", says="true or false"),
    error("predict", "--model", "{tmp}/experts_0.json", says="'num_local_experts'"),
    error("predict", "--model", "{tmp}/top_k_over.json", says="exceeds num_local_experts"),
    error("predict", "--gpu", "{tmp}/gpu_no_name.yaml", says="field 'name'"),
    error("predict", "--gpu", "{tmp}/gpu_inf_bw.yaml", says="hbm_bandwidth_tbps"),
    error("predict", "--gpu", "{tmp}/gpu_old_schema.yaml", says="field 'max_gpus_per_node'"),
    error("predict", "--profile", "hardware_specs/h100-sxm.yaml", says="pass it as --gpu"),
    error(
        "predict", "--gpu", "perfmodel/profiles/vllm-0.6.3-h100.yaml", says="pass it as --profile"
    ),
    error("capacity", "--qps", "1e-9", says="below 0.001"),
    error("capacity", "--qps", "1e300", says="above 1e+06"),
    error("capacity", "--qps", "1", "--prices", "h100=3,h100-sxm=4", says="priced twice"),
    error("capacity", "--qps", "1", "--gpus", "h100", "--prices", "a100=2", says="not among"),
    error("capacity", "--qps", "1", "--gpus", "h100,h100", "--prices", "a100=2", says="not among"),
    error("capacity", "--workload", "{tmp}/wl_fraction.csv", says="whole number of tokens"),
    error("capacity", "--workload", "{tmp}/wl_fraction.jsonl", says="output_len"),
    error("predict", "--model", "405b", "--strict", says="1 of 1 point does not fit"),
    error(
        "predict",
        "--gpu",
        "a100",
        "--model",
        "405b",
        "--strict",
        says="1 of 1 point does not fit",
    ),
    error("validate", "--measurements", "{tmp}/nan_unknown_gpu.csv", says="unknown gpu"),
    # --- output paths ---------------------------------------------------------------------
    error("validate", "--report", "{tmp}/out.txt", says=".html"),
    error("validate", "--report", "{tmp}/no/such/dir/out.html", says="does not exist"),
    error("validate", "--report", "{tmp}/emptydir.html", says="directory"),
    error(
        "calibrate",
        "--table",
        "specprefill_8b_batch1",
        "--out",
        "{tmp}/no/dir/p.yaml",
        says="does not exist",
    ),  # fmt: skip
    error("capacity", "--qps", "1", "--report", "{tmp}/no/dir/r.html", says="r.html"),
    error("capacity", "--qps", "1", "--report", "{tmp}/r.pdf", says="pdf"),
    error("profile", *PROFILE, "--out", "{tmp}/good.csv/p.csv", says="p.csv"),  # under a file
    error("profile", *PROFILE, "--out", "{tmp}", says="directory"),
    # a directory as an output file: refused first (before a bad --gpus or --device is even
    # read), one line naming the option and that it is a directory
    error(
        "capacity",
        "--qps",
        "1",
        "--gpus",
        "nosuch",
        "--report",
        "./",
        says="--report ./ is a directory",
    ),
    error("capacity", "--qps", "1", "--report", "{tmp}/emptydir", says="emptydir is a directory"),
    error("capacity", "--qps", "1", "--report", "{tmp}/new.md/", says="names a directory"),
    error(
        "calibrate",
        "--table",
        "nosuch",
        "--out",
        "{tmp}/emptydir",
        says="--out {tmp}/emptydir is a directory",
    ),
    error(
        "validate", "--table", "nosuch", "--report", "{tmp}", says="--report {tmp} is a directory"
    ),
    error(
        "profile",
        "--ops",
        "--model",
        TINY,
        "--device",
        "tpu",
        "--out",
        "{tmp}",
        says="--out {tmp} is a directory",
    ),
    error(
        "profile", "--ops", "--model", TINY, "--device", "cpu", "--out", "{tmp}/o.txt", says=".csv"
    ),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--threads", "100000", says="--threads"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--threads", "4096", says="cores"),
    error("profile", *PROFILE, "--out", "{tmp}/p.csv", "--prompt-len", "100k", says="context"),
    error(
        "calibrate", "--table", "specprefill_70b_baseline", "--out", "/proc/x.yaml", says="/proc"
    ),
    error("calibrate", "--table", "specprefill_70b_baseline", "--out", "/dev/full", says="regular"),
    error("validate", "--table", "", says="--table: empty value"),
    error("capacity", "--qps", "1", "--gpus", "", says="--gpus: empty value"),
    error("predict", "--batch", "8,8", says="repeats"),
    error("predict", "--mode", "fast", says="roofline or additive"),
    runs("predict", "--mode", "ROOFLINE"),
    runs("predict", "--weight-dtype", "FP8"),
    runs("list", "GPUS"),
]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, content in FILES.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (folder / "emptydir").mkdir()
    (folder / "emptydir.html").mkdir()
    return folder


def test_corpus_is_large_and_covers_every_command():
    from perfmodel.cli.main import load_commands
    from perfmodel.cli.typer_app import app

    load_commands()

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    covered = {case.values[0][0] for case in CASES}
    assert len(CASES) >= 100
    assert commands <= covered | {"critical-length"}, commands - covered


@pytest.mark.parametrize(("argv", "code", "says"), CASES)
def test_hostile_input(argv, code, says, tmp, capsys):
    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    says = says if says is None else says.replace("{tmp}", str(tmp))
    args = [str(ROOT / a) if a.startswith(("hardware_specs/", "perfmodel/")) else a for a in args]
    if code == 0:
        args.append("--json")
    got = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    assert got == code, (got, err[-2000:])
    lines = [line for line in err.splitlines() if line.strip()]
    if says is None:  # a legitimate run, silent on stderr
        assert not lines, err
        json.loads(out)
    elif code == 2:
        assert len(lines) == 1, err
        assert lines[0].startswith("error: "), lines[0]
        assert says.lower() in lines[0].lower(), lines[0]
    else:
        assert any(says.lower() in line.lower() for line in lines), err
        assert all(line.startswith("warning: ") for line in lines), err
        json.loads(out)


# --- standard streams: only a real process has them (three subprocesses) -------------------
ENTRY = "import sys; from perfmodel.cli.main import entry; sys.argv[0] = 'perfmodel'; entry()"


def _perfmodel(args: list[str], shell_tail: str = "", **kwargs):
    """Run the console entry point in a fresh process (argv after `python -c ENTRY`)."""
    command = [sys.executable, "-c", ENTRY, *args]
    if shell_tail:  # a redirection only a shell can make, e.g. '>&-' (closed stdout)
        command = " ".join(shlex.quote(c) for c in command) + " " + shell_tail
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        command, shell=bool(shell_tail), env=env, timeout=120, stderr=subprocess.PIPE, **kwargs
    )


def test_bare_perfmodel_prints_usage_not_an_error():
    done = _perfmodel([], stdout=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert b"Usage" in done.stdout and b"predict" in done.stdout
    assert done.stderr == b""


def test_closed_stdout_runs_without_a_traceback():
    done = _perfmodel(["predict", "--json"], shell_tail=">&-")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""


def test_full_stdout_is_one_error_line():
    with open("/dev/full", "wb") as full:
        done = _perfmodel(["predict", "--json"], stdout=full)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == [
        "error: cannot write the output: No space left on device"
    ]


# --- generated cases (hypothesis) -----------------------------------------------------------
# Random values for every option of every command, and broken files of every kind, through
# the real entry point in this process. Each must end in exactly one 'error:' line on stderr
# and exit 2, or in a legitimate run (exit 0, JSON on stdout, only 'warning:' lines): never a
# traceback, a signal or a hang (CASE_SECONDS per case, by SIGALRM).
CASE_SECONDS = 30
# cheap base arguments per command (a fuzzed option comes after them and overrides them);
# `profile` (measures) and `app` (starts a server) have their hostile values in CASES
BASE = {
    "predict": [],
    "list": [],
    "specdecode": [*SMALL],
    "critical-length": [*SMALL],
    "min-acceptance": [*SMALL, "--gamma", "3"],
    "validate": ["--table", "magicdec_p8192_fullkv"],
    "calibrate": ["--table", "specprefill_70b_baseline"],
    "specprefill": [],
    "recommend": ["--model", "8b"],
    "capacity": ["--qps", "1", "--model", "8b", "--gpus", "h100", "--weight-dtype", "bf16"],
}
OUTPUT_OPTIONS = {"--out", "--report"}  # values kept inside the test's folder
OUTPUT_VALUES = [
    "x",
    "x.txt",
    "x.html",
    "X.MD",
    "x.yaml",
    "no/dir/x.html",
    ".",
    "./",
    "{tmp}",
    "{tmp}/good.csv",
    "{tmp}/emptydir.html",
    "/proc/x.yaml",
]
EXTREMES = [
    *("0", "-1", "1", "2", "3", "8", "64", "4k", "128k", "1m", "1024m", "1025m"),
    *("0.5", "1e-9", "1e6", "1e308", "-1e308", "nan", "inf", "-inf", "1" + "0" * 400),
    *(" ", "1,1", "1,,2", ",", "4k,4096", "h100,h100", "0.1,0.1", "a,b", "null", "true"),
    *("ROOFLINE", "Additive", "FP8", "BF16", "int4", "H100", "SELF", "snapkv:64", "full"),
    *("8B", "70b", "x.json", "{tmp}/good.csv", "{tmp}/gpu_utf16.yaml", "{tmp}/binary.csv"),
    *("{tmp}/utf16.json", "{tmp}/profile_utf16.yaml", "{tmp}", "-", "--json", "é", "1_000"),
]


def _command_options() -> list[tuple[str, str]]:
    """(command, option) for every value-taking option of every fuzzed command."""
    from typer.main import get_group

    from perfmodel.cli.main import load_commands
    from perfmodel.cli.typer_app import app

    load_commands()  # every command module (a run loads only the one it names)
    group = get_group(app)
    pairs = []
    for name, command in sorted(group.commands.items()):
        if name not in BASE:
            continue
        for param in command.params:
            if not getattr(param, "is_flag", False):
                pairs.append((name, param.opts[0] if param.opts else param.name))
    return pairs


COMMAND_OPTIONS = _command_options()


@st.composite
def _option_case(draw):
    command, option = draw(st.sampled_from(COMMAND_OPTIONS))
    if option in OUTPUT_OPTIONS:
        value = draw(st.sampled_from(OUTPUT_VALUES))
    else:
        value = draw(
            st.one_of(
                st.sampled_from(EXTREMES),
                st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
                st.integers(-(10**6), 10**7).map(str),
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.lists(st.sampled_from(["1", "8", "4k", "0.3", "h100", "1b"]), min_size=2,
                         max_size=3).map(",".join),
            )
        )  # fmt: skip
    return command, option, value


class _Timeout(Exception):
    pass


def _run_bounded(args: list[str]) -> int:
    """main(args) with a wall-clock bound (a hang fails the case instead of the suite), and
    no Python warning (numpy's overflow, divide by zero ...): outside pytest it would reach
    the user's stderr as a second, unprefixed line."""
    import signal
    import warnings

    def expire(signum, frame):
        raise _Timeout(f"no answer within {CASE_SECONDS} s: {args}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    leaked = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not leaked, (args, leaked[:3])
    return code


def _assert_clean(code: int, out: str, err: str, names: tuple[str, ...]) -> None:
    """Exit 2 with one error line naming one of `names`, or exit 0 with JSON and warnings."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (0, 2), (code, err[-2000:])
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        shown = lines[0].lower()
        # the error line has its whitespace collapsed (a value may hold a newline)
        words = {" ".join(n.split()).lower() for n in names} | {
            " ".join(part.split()).lower() for n in names for part in n.split(",")
        }
        assert any(w in shown for w in words if w), (names, lines[0])
    else:
        assert all(line.startswith("warning: ") for line in lines), err
        if out.strip():
            json.loads(out)


@settings(
    max_examples=160,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_option_case())
def test_random_option_values(case, tmp, capsys, monkeypatch):
    command, option, raw = case
    monkeypatch.chdir(tmp)  # relative output paths land in the test's folder
    value = raw.replace("{tmp}", str(tmp))
    args = [command, *BASE[command]]
    args += [value] if not option.startswith("-") else [option, value]
    if command != "list":
        args.append("--json")
    capsys.readouterr()
    code = _run_bounded(args)
    out, err = capsys.readouterr()
    _assert_clean(code, out, err, (option, value, command))


# Broken files of every kind. Loaders cache by path, so every example gets a new file name.
OPTABLE_CSV = (ROOT / "perfmodel" / "optables" / "h200__torch-cudagraph.csv").read_text()
FILE_KINDS = {  # kind -> (valid text, file suffix, argv with {f} for the file)
    "config": (_config(), ".json", ["predict", "--model", "{f}"]),
    "gpu": (GPU_YAML, ".yaml", ["predict", "--gpu", "{f}"]),
    "profile": (PROFILE_YAML, ".yaml", ["predict", "--profile", "{f}"]),
    "measurements": (_csv(*_rows()), ".csv", ["validate", "--measurements", "{f}"]),
    "workload": (
        "prompt_len,output_len,arrival_time\n"
        + "".join(f"{500 + 37 * i},{60 + 11 * i},{0.5 * i}\n" for i in range(12)),
        ".csv",
        ["capacity", "--workload", "{f}", *BASE["capacity"][2:]],
    ),
    # an operator table, reached through a profile that names it (path relative to the profile)
    "optable": (OPTABLE_CSV, ".csv", ["predict", "--gpu", "h200", "--profile", "{f}.yaml"]),
}
FIELD_VALUES = [0, -1, 2.5, 1e308, -1e308, 10**400, math.nan, math.inf, "8", "", "false", True,
                None, [], {}, "x" * 50]  # fmt: skip
CELL_VALUES = ["0", "-1", "2.5", "nan", "inf", "1e308", "1" + "0" * 400, "", "x", "true", "é"]


def _structured(kind: str, text: str):
    if kind == "config":
        return json.loads(text)
    return yaml.safe_load(text)


def _dump(kind: str, data) -> str:
    if kind == "config":
        return json.dumps(data, allow_nan=True)
    return yaml.safe_dump(data, allow_unicode=True)


@st.composite
def _file_case(draw):
    """(kind, how, detail): a recipe, kept small so a failing example reads in one line;
    _broken_file builds the bytes from it."""
    kind = draw(st.sampled_from(sorted(FILE_KINDS)))
    how = draw(st.sampled_from(["bytes", "encoding", "truncate", "value", "drop", "extra"]))
    if how == "bytes":
        return kind, how, draw(st.binary(max_size=400))
    if how == "encoding":
        return kind, how, draw(st.sampled_from(["utf-16", "utf-16-le", "utf-8-sig", "utf-32",
                                                 "cp1252"]))  # fmt: skip
    if how == "truncate":
        return kind, how, draw(st.floats(0, 1))
    if kind in ("config", "gpu", "profile"):
        keys = sorted(_structured(kind, FILE_KINDS[kind][0]))
        key = draw(st.sampled_from(keys))
        if how == "value":
            return kind, how, (key, draw(st.sampled_from(FIELD_VALUES)))
        extra = draw(st.sampled_from(["extra_field", "efficency", "hbm_gb", key + "_2"]))
        return kind, how, key if how == "drop" else extra
    lines = FILE_KINDS[kind][0].splitlines()
    col = draw(st.integers(0, len(lines[0].split(",")) - 1))
    row = draw(st.integers(1, len(lines) - 1))
    return kind, how, (col, row, draw(st.sampled_from(CELL_VALUES)))


def _broken_file(kind: str, how: str, detail) -> bytes:
    text = FILE_KINDS[kind][0]
    if how == "bytes":
        return detail
    if how == "encoding":
        return (text.replace("e", "é", 3) if detail == "cp1252" else text).encode(detail)
    if how == "truncate":
        return text[: int(detail * len(text))].encode()
    if kind in ("config", "gpu", "profile"):
        data = _structured(kind, text)
        if how == "value":
            data[detail[0]] = detail[1]
        elif how == "drop":
            del data[detail]
        else:
            data[detail] = 1
        return _dump(kind, data).encode()
    rows = [line.split(",") for line in text.splitlines()]
    col, row, cell = detail
    if how == "value":
        rows[row][col] = cell
    elif how == "drop":
        rows = [r[:col] + r[col + 1 :] for r in rows]
    else:
        rows = [r + (["extra"] if i == 0 else ["1"]) for i, r in enumerate(rows)]
    return ("\n".join(",".join(r) for r in rows) + "\n").encode()


_serial = itertools.count()


@settings(
    max_examples=140,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_file_case())
def test_random_broken_files(case, tmp, capsys):
    kind, how, detail = case
    content = _broken_file(kind, how, detail)
    _, suffix, argv = FILE_KINDS[kind]
    path = tmp / f"fuzz{next(_serial)}_{kind}_{how}{suffix}"
    path.write_bytes(content)
    if kind == "optable":  # the profile naming the table, beside it
        profile = yaml.safe_load(PROFILE_YAML.replace("vllm-h100", "fuzz-h200"))
        profile.update(gpus=["h200"], optable=path.name)
        Path(f"{path}.yaml").write_text(yaml.safe_dump(profile))
    args = [a.replace("{f}", str(path)) for a in argv] + ["--json"]
    capsys.readouterr()
    code = _run_bounded(args)
    out, err = capsys.readouterr()
    _assert_clean(code, out, err, (path.name,))
