"""The vLLM runner without vLLM or a GPU: metric parsing on a synthetic batch, engine arguments,
and whole sweeps against the stand-in engine in tests/vllm_stand_in.py.

None of this is a real-engine check: the one-step prefill at batch 8 on real vLLM is still open
(profiler/README.md).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from perfmodel.cli import main
from perfmodel.errors import PerfModelError
from profiler import fingerprint, vllm_runner
from profiler.runner import Point
from profiler.sweep import ResultsFile, SweepSpec, grid, run_sweep
from profiler.vllm_metrics import parse_request_metrics
from profiler.vllm_runner import NOT_INSTALLED, warmup_point
from tests.conftest import run_cli
from tests.vllm_stand_in import (
    ASYNC_LAUNCH_S,
    DECODE_STEP_S,
    ENGINE_ARGS,
    PREFILL_S_PER_TOKEN,
    SAMPLING_PARAMS,
    EngineDeadError,
    make_vllm,
    reset_process,
)

FIXTURES = Path(__file__).parent / "fixtures" / "profiler"
TINY = FIXTURES / "tiny-llama" / "config.json"
SPEC = SweepSpec("tiny-llama", "vllm", 1, 1, "bf16", "bf16")


def _as_objects(value):
    """JSON -> attribute objects, as vLLM hands them out (RequestOutput, RequestStateStats)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _as_objects(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_as_objects(v) for v in value]
    return value


@pytest.fixture(scope="module")
def synthetic():
    return json.loads((FIXTURES / "vllm_request_outputs_synthetic.json").read_text())


@pytest.fixture
def vllm(monkeypatch):
    """The stand-in installed as ``vllm``; the engine-mode variable restored afterwards."""
    monkeypatch.delenv(vllm_runner.IN_PROCESS_ENV, raising=False)
    monkeypatch.setattr(vllm_runner, "vllm_available", lambda: True)

    def install(crash_at=None, **kwargs):
        module = make_vllm(crash_at, **kwargs)
        monkeypatch.setitem(sys.modules, "vllm", module)
        return module

    reset_process()
    yield install
    reset_process()  # a CUDA fault in one test must not poison the next


def _sweep(runner, points, out):
    results = ResultsFile(out, "tiny-llama", False)
    fp = lambda: fingerprint.collect(use_gpu=False)  # noqa: E731
    return run_sweep(runner, SPEC, points, results, fp, progress=False)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---- metric parsing ----------------------------------------------------------------------
@pytest.mark.parametrize("as_objects", [True, False])
def test_parse_request_metrics_on_synthetic_batch(synthetic, as_objects):
    outputs = _as_objects(synthetic["outputs"]) if as_objects else synthetic["outputs"]
    got = parse_request_metrics(outputs)
    assert got["num_requests"] == 4
    assert got["ttft_batch_s"] == pytest.approx(0.060, abs=1e-9)
    assert got["ttft_mean_s"] == pytest.approx(0.053, abs=1e-9)
    assert got["ttft_max_s"] == pytest.approx(0.058, abs=1e-9)
    assert got["tpot_mean_s"] == pytest.approx(0.0115, abs=1e-9)
    assert got["queue_mean_s"] == pytest.approx(0.011, abs=1e-9)
    assert got["num_generation_tokens"] == 16
    assert got["scheduled_steps"] == 2  # scheduled_ts 100.01 and 100.012: a split batch
    assert got["ttft_batch_s"] >= got["ttft_max_s"] >= got["ttft_mean_s"]


def test_parse_request_metrics_single_token_has_no_tpot(synthetic):
    out = json.loads(json.dumps(synthetic["outputs"][0]))
    out["metrics"].update(num_generation_tokens=1, last_token_ts=out["metrics"]["first_token_ts"])
    got = parse_request_metrics([out])
    assert math.isnan(got["tpot_mean_s"])
    assert got["ttft_batch_s"] == pytest.approx(0.05)
    assert got["scheduled_steps"] == 1


def test_parse_request_metrics_without_stats_says_how_to_fix(synthetic):
    out = dict(synthetic["outputs"][0], metrics=None)
    with pytest.raises(PerfModelError, match="disable_log_stats=False"):
        parse_request_metrics([out])
    v0_style = dict(synthetic["outputs"][0], metrics={"first_token_time": 1.0})
    with pytest.raises(PerfModelError, match="RequestStateStats"):
        parse_request_metrics([v0_style])


@pytest.mark.parametrize("name", ["scheduled_ts", "first_token_ts", "last_token_ts"])
def test_parse_request_metrics_treats_real_defaults_as_missing(synthetic, name):
    # RequestStateStats timestamps default to 0.0, not None: an unrecorded one must not pass
    out = json.loads(json.dumps(synthetic["outputs"][0]))
    out["metrics"][name] = 0.0
    with pytest.raises(PerfModelError, match="RequestStateStats"):
        parse_request_metrics([out])


# ---- engine arguments --------------------------------------------------------------------
def test_vllm_runner_without_vllm_raises_clear_error(monkeypatch):
    monkeypatch.setattr(vllm_runner, "vllm_available", lambda: False)
    with pytest.raises(PerfModelError) as err:
        vllm_runner.VllmRunner(TINY, vocab_size=256)
    assert str(err.value) == NOT_INSTALLED


def test_engine_args_one_step_prefill_fp8_scheme_and_backend(monkeypatch):
    monkeypatch.setattr(vllm_runner, "vllm_available", lambda: True)
    runner = vllm_runner.VllmRunner(
        TINY, vocab_size=256, weight_dtype="fp8", kv_dtype="fp8", attention_backend="FLASH_ATTN"
    )
    args = runner.engine_args([Point(8, 4096, 64), Point(32, 512, 64)])
    assert args["max_num_batched_tokens"] == 8 * 4096  # the largest batch x prompt
    assert args["max_model_len"] == 4096 + 64
    assert args["max_num_seqs"] == 32
    assert args["load_format"] == "dummy" and args["skip_tokenizer_init"] is True
    assert args["disable_log_stats"] is False and args["enable_prefix_caching"] is False
    # "fp8" means two schemes across 0.26 / 0.33; fp8_per_tensor means one
    assert args["quantization"] == "fp8_per_tensor" and args["kv_cache_dtype"] == "fp8"
    assert args["attention_backend"] == "FLASH_ATTN"
    assert set(args) <= ENGINE_ARGS  # every keyword is a listed EngineArgs field
    folder = vllm_runner.write_config_dir(TINY)
    try:
        assert [p.name for p in folder.iterdir()] == ["config.json"]
    finally:
        import shutil

        shutil.rmtree(folder)


def test_kv_dtype_auto_is_recorded_as_the_model_dtype(monkeypatch):
    monkeypatch.setattr(vllm_runner, "vllm_available", lambda: True)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, weight_dtype="fp16", kv_dtype="fp16")
    assert runner.engine_args([Point(1, 8, 4)])["kv_cache_dtype"] == "auto"
    assert runner.settings()["kv_cache_dtype_used"] == "float16"
    # "auto" cannot give a bf16 KV cache beside fp16 weights: refused, not recorded wrongly
    with pytest.raises(PerfModelError, match="model dtype"):
        vllm_runner.VllmRunner(TINY, vocab_size=256, weight_dtype="fp16", kv_dtype="bf16")


def test_warmup_point_fits_the_smallest_sweep():
    points = grid([1, 8], [8, 64], [4, 16])
    w = warmup_point(points)
    assert w == Point(1, 8, 4)
    assert w.prompt_len < max(p.prompt_len + p.output_len for p in points)  # < max_model_len


# ---- the stand-in itself -----------------------------------------------------------------
def test_stand_in_refuses_unknown_keywords(vllm):
    module = vllm()
    with pytest.raises(TypeError, match="attention_backend_name"):
        module.LLM(model="x", max_model_len=16, attention_backend_name="FLASH_ATTN")
    with pytest.raises(TypeError, match="quantisation"):
        module.LLM(model="x", max_model_len=16, quantisation="fp8")
    with pytest.raises(TypeError, match="max_new_tokens"):
        module.SamplingParams(max_new_tokens=4)
    module.LLM(model="x", max_model_len=16, attention_backend="FLASH_ATTN")  # a real field


def test_stand_in_api_names_come_from_both_wheels():
    """The names were read from the vllm 0.26.0 and 0.33.0 wheels (fixture's `how`): the 21
    names the older list had that one of them lacks are gone, the runner's are there."""
    data = json.loads((FIXTURES / "vllm_api_names.json").read_text())
    assert set(data["wheels"]) == {"0.26.0", "0.33.0"}
    assert all(len(w["sha256"]) == 64 for w in data["wheels"].values())
    for part in ("engine_args", "sampling_params"):
        assert data[part]["source"]["versions"] == ["0.26.0", "0.33.0"]
    gone = {"cuda_graph_sizes", "swap_space", "task", "rope_theta", "num_lookahead_slots",
            "calculate_kv_scales", "max_num_partial_prefills", "override_attention_dtype"}  # fmt: skip
    assert not gone & ENGINE_ARGS
    assert not {"best_of", "logits_processors", "truncate_prompt_tokens"} & SAMPLING_PARAMS
    assert {"async_scheduling", "enable_chunked_prefill", "kv_cache_dtype"} <= ENGINE_ARGS
    assert (len(ENGINE_ARGS), len(SAMPLING_PARAMS)) == (214, 34)


def test_stand_in_refuses_a_prompt_as_long_as_max_model_len(vllm):
    module = vllm()
    llm = module.LLM(model="x", max_model_len=12)
    with pytest.raises(ValueError, match="maximum model length"):
        llm.generate([{"prompt_token_ids": [1] * 16}], module.SamplingParams(max_tokens=4))


# ---- sweeps against the stand-in ---------------------------------------------------------
def test_sweep_in_process_engine_prefills_each_batch_in_one_step(vllm, tmp_path):
    module = vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=2, warmup=1)
    out = tmp_path / "v.csv"
    summary = _sweep(runner, grid([2, 8], [100], [5]), out)
    assert (summary.rows_written, summary.split, summary.errors) == (2, 0, 0)
    llm = module.LLM.instances[-1]
    assert llm.in_process  # the runner asked for the in-process engine core
    assert llm.kwargs["max_num_batched_tokens"] == 800 and llm.kwargs["max_num_seqs"] == 8
    assert llm.kwargs["max_model_len"] == 105
    params = llm.params
    assert (params.max_tokens, params.min_tokens, params.ignore_eos, params.detokenize) == (
        5, 5, True, False,
    )  # fmt: skip
    timed = llm.prompts[-16:]  # the last point: 2 runs x 8 requests, all fresh ids
    assert len({tuple(p) for p in timed}) == len(timed)
    assert all(len(p) == 100 and 0 <= min(p) and max(p) < 256 for p in timed)
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert float(rows[0]["ttft_s"]) == pytest.approx(2 * 100 * PREFILL_S_PER_TOKEN)
    assert float(rows[1]["ttft_s"]) == pytest.approx(8 * 100 * PREFILL_S_PER_TOKEN)
    assert float(rows[1]["tpot_s"]) == pytest.approx(DECODE_STEP_S)
    settings = json.loads(rows[1]["runner_settings"])
    assert settings["prefill_steps_max"] == 1 and settings["engine_in_process"] is True
    assert settings["engine_core_client"] == "InprocClient"
    assert settings["preemptions"] == 0 and settings["kv_cache_dtype_used"] == "bfloat16"
    assert not Path(llm.kwargs["model"]).exists()  # the temp config dir is cleaned up
    assert llm.llm_engine.shut_down


def test_old_multiprocess_path_is_reported_split_not_ok(vllm, tmp_path):
    """The old path (engine in its own process, requests reaching it one by one) prefills a
    batch of 8 over 8 steps: the point is written split, never ok."""
    vllm()
    old = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0, engine_in_process=False)
    summary = _sweep(old, [Point(8, 100, 5)], tmp_path / "old.csv")
    (row,) = _rows(tmp_path / "old.csv")
    assert row["status"] == "split" and summary.split == 1
    assert "8 engine steps" in row["note"]
    settings = json.loads(row["runner_settings"])
    assert settings["prefill_steps_max"] == 8 and settings["engine_core_client"] == "SyncMPClient"
    one_step = 8 * 100 * PREFILL_S_PER_TOKEN
    assert float(row["ttft_s"]) > 2 * one_step  # what the old runner wrote as ok

    vllm()
    new = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    _sweep(new, [Point(8, 100, 5)], tmp_path / "new.csv")
    (row,) = _rows(tmp_path / "new.csv")
    assert row["status"] == "ok" and row["note"] == ""
    assert float(row["ttft_s"]) == pytest.approx(one_step)


def test_batch_above_max_num_seqs_is_split(vllm, tmp_path):
    vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0, max_num_seqs=4)
    _sweep(runner, [Point(4, 32, 3), Point(8, 32, 3)], tmp_path / "s.csv")
    assert [r["status"] for r in _rows(tmp_path / "s.csv")] == ["ok", "split"]


def test_tiny_sweep_prompt_8_output_4_runs(vllm, tmp_path):
    """max_model_len is 12 here: the old fixed 16-token warm-up was refused by the engine."""
    module = vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=1)
    summary = _sweep(runner, grid([1, 2], [8], [4]), tmp_path / "t.csv")
    assert summary.rows_written == 2
    assert [r["status"] for r in _rows(tmp_path / "t.csv")] == ["ok", "ok"]
    llm = module.LLM.instances[-1]
    assert llm.kwargs["max_model_len"] == 12
    assert len(llm.prompts[0]) == 8  # the warm-up request: the sweep's shortest prompt
    assert runner.settings()["warmup_request"] == [1, 8, 4]


def test_engine_crash_mid_sweep_restarts_and_finishes(vllm, tmp_path):
    """A plain engine failure: a new engine in the same process, the sweep goes on.
    generate calls: 1 = warm-up, 2 = point 1, 3 = point 2 (crash), 4 = new warm-up, 5."""
    module = vllm(crash_at=3, cuda=False)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    summary = _sweep(runner, grid([1, 2, 4], [16], [3]), tmp_path / "c.csv")
    rows = _rows(tmp_path / "c.csv")
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert summary.rows_written == 3 and summary.errors == 1 and not summary.poisoned
    first, second = module.LLM.instances
    assert first.dead and first.llm_engine.shut_down and not second.dead
    assert runner.engine_starts == 2
    with pytest.raises(EngineDeadError):  # why a restart is needed: a dead engine stays dead
        first.generate([{"prompt_token_ids": [1]}], module.SamplingParams(max_tokens=1))


def test_cuda_fault_stops_the_process_and_resume_in_a_fresh_one_finishes(vllm, tmp_path):
    """An illegal memory access poisons the process (the stand-in, like CUDA, refuses a new
    engine in it): the sweep stops after writing the failed point, and a fresh process
    (reset_process) resumes the rest."""
    module = vllm(crash_at=3)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    points = grid([1, 2, 4], [16], [3])
    summary = _sweep(runner, points, tmp_path / "c.csv")
    assert [r["status"] for r in _rows(tmp_path / "c.csv")] == ["ok", "error"]
    assert "illegal memory access" in summary.poisoned and len(module.LLM.instances) == 1
    with pytest.raises(RuntimeError, match="illegal memory access"):
        module.LLM(model="x", max_model_len=16)  # no engine starts in this process
    reset_process()
    vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    results = ResultsFile(tmp_path / "c.csv", "tiny-llama", True)
    run_sweep(runner, SPEC, points, results, lambda: fingerprint.collect(use_gpu=False), False)
    assert [r["status"] for r in _rows(tmp_path / "c.csv")] == ["ok", "error", "ok"]


def test_chunked_prefill_and_preemption_are_split(vllm, tmp_path):
    """A batch of 1 chunked over 4 steps has one scheduled_ts and one first_token_ts, yet is
    split (batch x prompt above the token budget); a batch of 2 chunked gets first tokens
    from 2 steps; a KV cache too small for the batch preempts."""
    vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0,
                                    enable_chunked_prefill=True, max_num_batched_tokens=64)  # fmt: skip
    _sweep(runner, [Point(1, 200, 3), Point(2, 40, 3), Point(1, 60, 3)], tmp_path / "k.csv")
    rows = _rows(tmp_path / "k.csv")
    assert [r["status"] for r in rows] == ["split", "split", "ok"]
    assert "200 tokens > max_num_batched_tokens 64" in rows[0]["note"]
    assert "first tokens came from 2 engine steps" in rows[1]["note"]
    assert float(rows[0]["ttft_s"]) == pytest.approx(200 * PREFILL_S_PER_TOKEN)
    vllm(kv_tokens=300)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    _sweep(runner, [Point(4, 60, 20)], tmp_path / "p.csv")
    (row,) = _rows(tmp_path / "p.csv")
    assert row["status"] == "split" and "preemption" in row["note"]
    assert json.loads(row["runner_settings"])["preemptions"] > 0


def test_async_scheduling_is_off_and_read_back(vllm, tmp_path):
    """vLLM's default async scheduling stamps the first token after launching the next step;
    the runner turns it off, and records what the engine reports."""
    module = vllm()
    on = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0, async_scheduling=True)
    _sweep(on, [Point(2, 100, 5)], tmp_path / "on.csv")
    module = vllm()
    off = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    _sweep(off, [Point(2, 100, 5)], tmp_path / "off.csv")
    assert module.LLM.instances[-1].kwargs["async_scheduling"] is False
    (a,), (b,) = _rows(tmp_path / "on.csv"), _rows(tmp_path / "off.csv")
    assert float(b["ttft_s"]) == pytest.approx(2 * 100 * PREFILL_S_PER_TOKEN)
    assert float(a["ttft_s"]) - float(b["ttft_s"]) == pytest.approx(ASYNC_LAUNCH_S)
    settings = json.loads(b["runner_settings"])
    assert settings["async_scheduling_used"] is False and settings["dtype_used"] == "bfloat16"
    assert settings["kv_cache_dtype_used"] == "bfloat16" and settings["quantization_used"] is None


def test_quantization_config_is_refused_and_dtypes_are_checked(vllm, tmp_path, monkeypatch):
    vllm()
    data = json.loads(TINY.read_text()) | {"quantization_config": {"quant_method": "fp8"}}
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(data))
    with pytest.raises(PerfModelError, match="quantization_config"):
        vllm_runner.write_config_dir(cfg)
    module = vllm()
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    real = module.LLM.__init__

    def fp16_engine(self, **kwargs):  # an engine that ignores the requested dtype
        real(self, **kwargs)
        self.llm_engine.vllm_config.model_config.dtype = "torch.float16"

    monkeypatch.setattr(module.LLM, "__init__", fp16_engine)
    with pytest.raises(PerfModelError, match="dtype 'float16' \\(asked 'bfloat16'\\)"):
        runner.setup([Point(1, 8, 4)])


def test_engine_that_cannot_restart_records_the_rest_as_errors(vllm, tmp_path, monkeypatch):
    vllm(crash_at=2, cuda=False)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    real_start = runner._start_engine

    def start_once():
        if runner.engine_starts:
            runner.engine_starts += 1
            raise PerfModelError("the vLLM engine did not start (RuntimeError: no GPU left)")
        real_start()

    monkeypatch.setattr(runner, "_start_engine", start_once)
    summary = _sweep(runner, grid([1, 2, 4], [16], [3]), tmp_path / "d.csv")
    rows = _rows(tmp_path / "d.csv")
    assert [r["status"] for r in rows] == ["error", "error", "error"]
    assert "not running" in rows[2]["note"]
    assert summary.rows_written == 3


# ---- split rows stay out of validation and calibration -----------------------------------
def test_validate_uses_only_ok_rows(tmp_path):
    base = dict(model="8b", gpu="h100", num_gpus=1, tp=1, output_len=1, runner="vllm")
    rows = [
        dict(base, batch_size=1, prompt_len=1024, ttft_s=0.05, status="ok"),
        dict(base, batch_size=4, prompt_len=1024, ttft_s=0.2, status="ok"),
        dict(base, batch_size=8, prompt_len=1024, ttft_s=9.0, status="split"),
    ]
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = run_cli("validate", "--measurements", str(path), "--json", check_json=True)
    assert out["tables"][0]["rows"] == 2


# ---- what a user sees ----------------------------------------------------------------------
def test_profile_command_passes_the_backend_and_says_split(vllm, tmp_path, capsys):
    module = vllm()
    out = tmp_path / "p.csv"
    args = ["profile", "--runner", "vllm", "--model", str(TINY), "--out", str(out),
            "--batch", "4,8", "--prompt-len", "32", "--output-len", "3", "--repeats", "1",
            "--warmup", "0", "--max-num-seqs", "4", "--attention-backend", "FLASH_ATTN",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "1 split" in printed and "split" in printed.split("wrote")[0]  # table and summary
    assert module.LLM.instances[-1].kwargs["attention_backend"] == "FLASH_ATTN"
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok", "split"]
    assert "engine steps" in rows[1]["note"]
    assert json.loads(rows[0]["runner_settings"])["attention_backend"] == "FLASH_ATTN"


def test_cuda_fault_in_a_child_process_the_sweep_goes_on_in_a_fresh_one(tmp_path):
    """Through the entry point, in a child process whose `vllm` is the stand-in: the third
    generate call hits an illegal memory access (once: a marker file), the process cannot
    start another engine, and `perfmodel profile` resumes in a fresh process."""
    import os
    import subprocess

    from tests.conftest import CLI, REPO

    fake = tmp_path / "site" / "vllm"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os\n"
        "from tests.vllm_stand_in import make_vllm\n"
        "_marker = os.environ['STAND_IN_CRASH_MARKER']\n"
        "_crash = None if os.path.exists(_marker) else 3\n"
        "if _crash:\n"
        "    open(_marker, 'w').close()\n"
        "_m = make_vllm(crash_at=_crash)\n"
        "LLM, SamplingParams, __version__ = _m.LLM, _m.SamplingParams, 'stand-in'\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{fake.parent}{os.pathsep}{REPO}",
        "STAND_IN_CRASH_MARKER": str(tmp_path / "crashed"),
    }
    env.pop("PERFMODEL_FRESH_PROCESS", None)
    out = tmp_path / "f.csv"
    args = ["profile", "--runner", "vllm", "--model", str(TINY), "--out", str(out), "--batch",
            "1,2,4", "--prompt-len", "16", "--output-len", "3", "--repeats", "1", "--warmup",
            "0", "--no-progress"]  # fmt: skip
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "crashed").exists()
    rows = _rows(out)
    assert [(r["batch_size"], r["status"]) for r in rows] == [
        ("1", "ok"), ("2", "error"), ("4", "ok")
    ]  # fmt: skip
    assert "illegal memory access" in rows[1]["note"]
    assert "fresh process" in proc.stdout + proc.stderr


def test_a_restart_inside_the_except_block_finds_the_memory_still_held(vllm):
    """Why the sweep recovers after its except block: inside it, the traceback's frames still
    hold the failed step's KV tensors and the new engine's memory check fails (the stand-in
    models that check); with the frames cleared the same restart works."""
    import traceback

    vllm(crash_at=2, cuda=False)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    runner.setup([Point(1, 16, 3)])
    try:
        runner.measure(Point(1, 16, 3))
    except RuntimeError:
        runner.recover("RuntimeError: engine core failed")  # the old place
    assert runner.llm is None  # the new engine did not start
    runner.close()

    vllm(crash_at=2, cuda=False)
    runner = vllm_runner.VllmRunner(TINY, vocab_size=256, repeats=1, warmup=0)
    runner.setup([Point(1, 16, 3)])
    try:
        runner.measure(Point(1, 16, 3))
    except RuntimeError as exc:
        traceback.clear_frames(exc.__traceback__)
    runner.recover("RuntimeError: engine core failed")  # where run_sweep calls it now
    assert runner.llm is not None
    runner.close()
