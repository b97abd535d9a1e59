"""Measurement-CSV handling: rows grouped once and predicted per distinct shape (exactly the
per-row answer), dropped rows counted by cause, fits that the data cannot support refused,
unidentifiable parameters named; a config.json by relative path keeps a model name."""

from __future__ import annotations

import numpy as np
import pytest

import perfmodel.core.inference as inference
from perfmodel.accuracy.calibrate import fit_profile, unidentified_parameters
from perfmodel.accuracy.observations import build_table
from perfmodel.core.deployment import make_deployment
from perfmodel.errors import PerfModelError
from perfmodel.specs.models import load_model
from perfmodel.specs.profile import load_profile

HEADER = "model,gpu,num_gpus,tp,batch_size,prompt_len,output_len,ttft_s,tpot_s,status\n"


def _sweep(path, n=600, seed=1):
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for i in range(n):
        model, gpus = (("Llama-3.1-8B", 1), ("Llama-3.1-70B", 4))[i % 2]
        b, p = 2 ** rng.integers(0, 4), 256 * rng.integers(1, 4)
        lines.append(f"{model},h100,{gpus},{gpus},{b},{p},64,{0.1 + i * 1e-4},0.01,ok\n")
    path.write_text("".join(lines))
    return path


def test_grouped_prediction_equals_per_row_and_runs_once_per_group(tmp_path, monkeypatch):
    calls = []
    original = inference.prefill_time

    def counting(dep, batch, prompt, *args, **kwargs):
        calls.append(len(np.atleast_1d(batch)))
        return original(dep, batch, prompt, *args, **kwargs)

    monkeypatch.setattr(inference, "prefill_time", counting)
    table = build_table(_sweep(tmp_path / "sweep.csv"))
    (ttft,) = [o for o in table.observations if o.quantity == "ttft_s"]
    profile = load_profile("vllm-0.6.3-h100")
    grouped = ttft.predict(profile)
    assert len(calls) == 2  # one vectorized call per deployment
    assert sum(calls) <= 2 * 4 * 3  # distinct (batch, prompt) shapes only, not 600 rows
    frame = table.frame
    for i in range(0, len(frame), 37):  # spot-check rows against a per-row prediction
        r = frame.iloc[i]
        dep = make_deployment(r["model"], "h100", int(r["num_gpus"]), profile=profile)
        one = original(dep, np.array([r["batch_size"]]), np.array([r["prompt_len"]]))
        assert grouped[i] == pytest.approx(float(one[0]), rel=1e-12)


def test_dropped_rows_are_counted_by_cause(tmp_path):
    path = _sweep(tmp_path / "s.csv", n=20)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",0.01,ok", ",,ok")  # NaN tpot
    lines[2] = lines[2].replace(",0.01,ok", ",-1,ok")  # negative tpot
    lines[3] = lines[3].replace(",0.01,ok", ",inf,ok")  # infinite tpot
    path.write_text("".join(lines))
    table = build_table(path)
    assert table.notes == [
        "dropped 1 row: NaN tpot_s",
        "dropped 1 row: infinite tpot_s",
        "dropped 1 row: negative tpot_s",
    ]
    (tpot,) = [o for o in table.observations if o.quantity == "tpot_s"]
    (ttft,) = [o for o in table.observations if o.quantity == "ttft_s"]
    assert len(tpot.measured) == 17 and len(ttft.measured) == 20  # only that quantity dropped


def test_fit_refuses_no_more_points_than_parameters(tmp_path):
    table = build_table(_sweep(tmp_path / "s.csv", n=2))
    obs = [o for o in table.observations if o.quantity == "ttft_s"]
    params = ["efficiency.matmul", "efficiency.attention", "overhead.per_step_us"]
    with pytest.raises(PerfModelError, match="2 measured point.*3 parameter"):
        fit_profile(obs, load_profile("vllm-0.6.3-h100"), params)


def test_unidentified_parameters_from_the_jacobian():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    jac = np.column_stack([a, np.zeros(4), 2 * a, a**2])  # col 1 dead, col 2 = 2 x col 0
    out = unidentified_parameters(jac, ["p0", "dead", "p2", "p3"])
    assert out["dead"] == "moves no prediction of these rows"
    assert "p2" in out["p0"] and "p0" in out["p2"]
    assert "p3" not in out


def test_relative_config_path_keeps_a_model_name(tmp_path, monkeypatch):
    src = load_model("8b").config_path
    folder = tmp_path / "My-Model"
    folder.mkdir()
    text = open(src).read()
    (folder / "config.json").write_text(text)
    monkeypatch.chdir(folder)
    load_model.cache_clear()
    assert load_model("config.json").name == "My-Model"
    monkeypatch.chdir(tmp_path)
    assert load_model("My-Model/config.json").name == "My-Model"
