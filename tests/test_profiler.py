"""Unit tests of the profiler: fingerprint, sweep bookkeeping, torch model (vLLM runner:
test_vllm_runner.py).

No GPU and no vLLM needed; the CLI end-to-end tests are in test_profiler_cli.py.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from perfmodel.errors import PerfModelError
from profiler import fingerprint
from profiler.runner import Point, PointResult, is_oom, mean_cv
from profiler.sweep import COLUMNS, CORE_COLUMNS, ResultsFile, SweepSpec, grid, run_sweep

FIXTURES = Path(__file__).parent / "fixtures" / "profiler"
TINY = FIXTURES / "tiny-llama" / "config.json"
ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_vllm_optional():
    code = (
        "import sys, profiler, perfmodel.cli.commands.profile, profiler.sweep_setup, "
        "profiler.sweep, profiler.torch_runner, profiler.vllm_runner, profiler.fingerprint, "
        "profiler.timer, profiler.ops_bench, profiler.ops_comm\n"
        "heavy = [m for m in ('torch', 'vllm', 'pandas', 'pynvml') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# ---- fingerprint ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("nvml", "memory", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", 85e9, "h100-sxm"),
        ("NVIDIA H100 PCIe", 85e9, "h100-pcie"),
        ("NVIDIA H100 NVL", 100e9, "h100-nvl"),
        ("NVIDIA H200", 150e9, "h200"),
        ("NVIDIA A100-SXM4-80GB", 85e9, "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", 42e9, "a100-40gb"),
        ("NVIDIA A100-PCIE-40GB", 42e9, "a100-40gb"),
        ("NVIDIA GeForce RTX 4090", 25e9, "rtx4090"),
        ("NVIDIA L40S", 48e9, "l40s"),
        ("NVIDIA B200", 190e9, "b200"),
        ("NVIDIA L4", 24e9, "l4"),
    ],
)
def test_hardware_name(nvml, memory, expected):
    assert fingerprint.hardware_name(nvml, memory) == expected


def test_cpu_fingerprint_without_gpu():
    fp = fingerprint.collect(use_gpu=False)
    assert fp.gpu == "cpu-generic" and fp.gpu_count == 0
    assert fp.cpu_count >= 1 and fp.cpu_model
    assert set(fp.as_row()) <= set(COLUMNS)


def test_fingerprint_survives_broken_nvml(monkeypatch):
    class Broken:
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", Broken())
    fp = fingerprint.collect(use_gpu=True)
    assert fp.gpu == "cpu-generic"


def test_fingerprint_reads_nvml(monkeypatch):
    fake = SimpleNamespace(
        NVML_CLOCK_SM=1,
        NVML_CLOCK_MEM=2,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 8,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlSystemGetDriverVersion=lambda: "570.86.15",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=80 * 2**30),
        nvmlDeviceGetMaxClockInfo=lambda h, kind: {1: 1980, 2: 2619}[kind],
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700000,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fp = fingerprint.collect()
    assert (fp.gpu, fp.gpu_count, fp.driver) == ("h100-sxm", 8, "570.86.15")
    assert fp.gpu_memory_gb == pytest.approx(85.899, abs=1e-3)
    assert (fp.sm_clock_mhz, fp.mem_clock_mhz, fp.power_limit_w) == (1980, 2619, 700.0)


# ---- statistics -------------------------------------------------------------------------
def test_mean_cv_and_oom_detection():
    mean, cv = mean_cv([1.0, 2.0, 3.0])
    assert mean == 2.0 and cv == pytest.approx(0.5)
    assert math.isnan(mean_cv([1.0])[1])
    assert is_oom(MemoryError()) and is_oom(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_oom(RuntimeError("shape mismatch"))


# ---- sweep bookkeeping with a fake runner -----------------------------------------------
class FakeRunner:
    name = "torch"
    uses_gpu = False
    framework_version = "fake 1.0"

    def __init__(self, failures=None):
        self.failures = failures or {}
        self.measured: list[Point] = []
        self.closed = False

    def settings(self):
        return {"device": "cpu"}

    def setup(self, points):
        self.planned = list(points)

    def measure(self, point):
        self.measured.append(point)
        if point in self.failures:
            raise self.failures[point]
        return PointResult(1e-3 * point.prompt_len, 1e-4, 0.01, 0.02, 3, {"x": 1})

    def recover(self, error=""):
        pass

    def close(self):
        self.closed = True


SPEC = SweepSpec("tiny-llama", "torch", 1, 1, "fp32", "fp32")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_writes_columns_and_keeps_going_after_failures(tmp_path):
    out = tmp_path / "r.csv"
    points = grid([1, 2], [32, 64], [4])
    failures = {
        points[0]: MemoryError(),
        points[1]: RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"),
        points[2]: ValueError("boom\nsecond line"),
    }
    runner = FakeRunner(failures)
    summary = run_sweep(
        runner, SPEC, points, ResultsFile(out, "tiny-llama", False),
        lambda: fingerprint.collect(use_gpu=False), progress=False,
    )  # fmt: skip
    assert (summary.rows_written, summary.oom, summary.errors) == (4, 2, 1)
    assert runner.closed
    header = out.read_text().splitlines()[0].split(",")
    assert tuple(header[: len(CORE_COLUMNS)]) == CORE_COLUMNS
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["oom", "oom", "error", "ok"]
    assert rows[2]["note"] == "ValueError: boom"
    assert rows[0]["ttft_s"] == "" and float(rows[3]["ttft_s"]) == pytest.approx(0.064)
    assert json.loads(rows[3]["runner_settings"]) == {"device": "cpu", "x": 1}
    assert rows[3]["gpu"] == "cpu-generic" and rows[3]["runner"] == "torch"


def test_resume_skips_done_points_and_repairs_torn_line(tmp_path):
    out = tmp_path / "r.csv"
    points = grid([1], [16, 32, 64], [4])
    run_sweep(FakeRunner(), SPEC, points[:2], ResultsFile(out, "tiny-llama", False),
              lambda: fingerprint.collect(use_gpu=False), progress=False)  # fmt: skip
    before = out.read_text()
    with open(out, "a") as fh:  # a row torn by SIGKILL in the middle of a write
        fh.write("tiny-llama,cpu-generic,1,1,fp3")
    runner = FakeRunner()
    summary = run_sweep(runner, SPEC, points, ResultsFile(out, "tiny-llama", True),
                        lambda: fingerprint.collect(use_gpu=False), progress=False)  # fmt: skip
    assert runner.measured == [points[2]] and summary.skipped == 2
    after = out.read_text()
    assert after.startswith(before)
    assert [int(r["prompt_len"]) for r in _rows(out)] == [16, 32, 64]


def test_ctrl_c_keeps_finished_rows(tmp_path):
    out = tmp_path / "r.csv"
    points = grid([1], [16, 32, 64], [4])
    runner = FakeRunner({points[1]: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runner, SPEC, points, ResultsFile(out, "tiny-llama", False),
                  lambda: fingerprint.collect(use_gpu=False), progress=False)  # fmt: skip
    assert runner.closed
    assert [r["prompt_len"] for r in _rows(out)] == ["16"]


def test_results_file_errors(tmp_path):
    out = tmp_path / "r.csv"
    run_sweep(FakeRunner(), SPEC, grid([1], [16], [4]), ResultsFile(out, "tiny-llama", False),
              lambda: fingerprint.collect(use_gpu=False), progress=False)  # fmt: skip
    with pytest.raises(PerfModelError, match="was written for model tiny-llama, not Other"):
        ResultsFile(out, "Other", True)
    with pytest.raises(PerfModelError, match="--resume"):
        ResultsFile(out, "tiny-llama", False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PerfModelError, match=str(blocker / "r.csv")):
        ResultsFile(blocker / "r.csv", "tiny-llama", False)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(PerfModelError, match="not a perfmodel measurement CSV"):
        ResultsFile(bad, "tiny-llama", True)


# ---- the torch decoder -------------------------------------------------------------------
def test_torch_decoder_cache_matches_full_prefill():
    torch = pytest.importorskip("torch")
    from profiler.torch_runner import DecoderConfig, build_model

    for model_type, extra in (("llama", {}), ("qwen2", {"tie_word_embeddings": False})):
        data = json.loads(TINY.read_text()) | {"model_type": model_type} | extra
        cfg = DecoderConfig.from_dict(data)
        assert cfg.attention_bias is (model_type == "qwen2")
        model = build_model(cfg, "cpu", "fp32", 32)
        ids = torch.randint(0, cfg.vocab_size, (2, 12))
        with torch.inference_mode():
            model.allocate_cache(2, 16)
            full = model(ids, 0)
            model.allocate_cache(2, 16)
            model(ids[:, :7], 0)  # prefill 7, then 4 more at once, then one decode step
            model(ids[:, 7:11], 7)
            step = model(ids[:, 11:], 11)
        assert torch.allclose(full, step, atol=1e-5)
        assert model.lm_head.weight is model.embed_tokens.weight or model_type == "qwen2"


def test_torch_runner_rejects_moe_and_bad_dtype():
    from profiler.torch_runner import TorchRunner

    data = json.loads(TINY.read_text())
    with pytest.raises(PerfModelError, match="mixtral"):
        TorchRunner(data | {"model_type": "mixtral"})
    with pytest.raises(PerfModelError, match="int4"):
        TorchRunner(data, dtype="int4")


def test_timer_measures_elapsed_time():
    from profiler.timer import Timer

    ticks = iter([10.0, 10.25])
    timer = Timer("cpu", clock=lambda: next(ticks))
    with timer:
        pass
    assert timer.elapsed_s == 0.25


def test_rope_in_three_kernels_matches_rotate_half():
    torch = pytest.importorskip("torch")
    from profiler.torch_runner import apply_rope

    x = torch.randn(2, 6, 5, 8, dtype=torch.float64)
    angle = torch.randn(5, 4, dtype=torch.float64)
    emb = torch.cat((angle, angle), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x.chunk(2, dim=-1)
    expected = x * cos + torch.cat((-x2, x1), dim=-1) * sin  # HF apply_rotary_pos_emb
    sign = torch.cat((-torch.ones(4), torch.ones(4))).double()
    assert torch.allclose(apply_rope(torch, x, cos, sin * sign), expected, atol=1e-12)


def test_cuda_graph_setting_follows_device():
    from profiler.torch_runner import GRAPH_REPLAYS, TorchRunner

    data = json.loads(TINY.read_text())
    assert TorchRunner(data, device="cuda").cuda_graph is True  # the default on CUDA
    assert TorchRunner(data, device="cuda", cuda_graph=False).cuda_graph is False
    assert TorchRunner(data, device="cpu", cuda_graph=True).cuda_graph is False  # off on CPU
    gpu = TorchRunner(data, device="cuda").settings()
    assert gpu["cuda_graph"] is True and gpu["decode_replays"] == GRAPH_REPLAYS
    cpu = TorchRunner(data, device="cpu").settings()
    assert cpu["cuda_graph"] is False and "decode_replays" not in cpu


# ---- operator microbenchmarks (profile --ops) --------------------------------------------
def test_ops_plan_splits_gemms_as_the_cost_model_and_the_reference():
    from perfmodel.specs.models import load_model
    from profiler.ops_bench import OpsGrid, gemm_shapes, plan

    # ../shared/reference/measured/bench_ops.py: 70b_tp8 (K, N) shapes
    shapes = {op: (k, n) for op, k, n in gemm_shapes(load_model("Llama-3.1-70B"), 8)}
    assert shapes["qkv_proj"] == (8192, 1280) and shapes["o_proj"] == (1024, 8192)
    assert shapes["mlp_gate_up"] == (8192, 7168) and shapes["mlp_down"] == (3584, 8192)
    spec = load_model("Llama-3.1-8B")
    grid = OpsGrid.for_device("cuda")
    points = plan(spec, 1, "bf16", grid, multi_gpu=False)
    gemms = [p for p in points if p.kernel == "gemm"]
    assert {p.op for p in gemms} == {"qkv_proj", "o_proj", "mlp_gate_up", "mlp_down", "lm_head"}
    assert grid.m[0] == 1 and grid.m[-1] == 16384 and len(gemms) == 5 * len(grid.m)
    head = next(p for p in gemms if p.op == "lm_head" and p.m == 4)
    assert (head.k, head.n, head.flops) == (4096, 128256, 2.0 * 4 * 4096 * 128256)
    assert head.bytes == 2 * (4096 * 128256 + 4 * 4096 + 4 * 128256)
    decode = [p for p in points if p.kernel == "attn_decode"]
    assert all((p.heads, p.kv_heads, p.head_dim) == (32, 8, 128) for p in decode)
    assert all(2 * p.batch * 8 * p.context * 128 * 2 <= grid.max_bytes for p in decode)
    assert not any(p.kernel == "allreduce" for p in points)
    assert any(p.kernel == "allreduce" for p in plan(spec, 1, "bf16", grid, multi_gpu=True))


def test_gpu_sweep_plan_reproduces_the_reference_shapes():
    import importlib.util

    from perfmodel.specs.models import load_model

    path = Path(__file__).resolve().parents[1] / "profiler" / "gpu" / "sweeps.py"
    module_spec = importlib.util.spec_from_file_location("gpu_sweeps", path)
    sweeps = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(sweeps)

    def count(model):
        spec = load_model(model)
        decode = sum(len(b) for _, b in sweeps.decode_grid(spec, False))
        prefill = sum(len(b) for _, b, _ in sweeps.prefill_grid(spec, False))
        return decode, prefill

    # h100_torch_cudagraph.csv: 27 + 18 points for 8B, 34 + 11 for 1B (90 in all)
    assert count("Llama-3.1-8B") == (27, 18)
    assert count("Llama-3.2-1B") == (34, 11)


@pytest.mark.parametrize(
    ("split", "tail"),
    [(0, "0 errors)"), (2, "0 errors, 2 split: prefill over several engine steps, see note)")],
)
def test_profile_summary_line_says_what_was_written(capsys, split, tail):
    """The last line of `perfmodel profile` (without --json) names the rows and the file,
    with or without split points (the split-less form once lost its first half)."""
    from perfmodel.cli.commands.profile import _print_summary
    from profiler.sweep import SweepSummary

    summary = SweepSummary(out="r.csv", rows_written=5, skipped=3, oom=1, split=split)
    _print_summary(summary)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"wrote 5 rows to r.csv (skipped 3 already measured, 1 oom, {tail}"
