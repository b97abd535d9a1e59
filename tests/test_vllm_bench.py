"""vLLM benchmark results as data: the reader on files laid out as vLLM's writers lay them out
(tests/vllm_bench_writer.py follows vllm 0.26.0 / 0.33.0 serve.py and latency.py and the
2024 benchmark_serving.py), and bad input refused with one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from perfmodel.accuracy.vllm_bench import (
    LatencyResult,
    ServeResult,
    read_vllm_result,
    summaries_from_requests,
)
from perfmodel.errors import PerfModelError
from tests import vllm_bench_writer as w
from tests.conftest import assert_one_line_error, run_cli

WRITERS = ("0.33", "0.26", "2024")


def _file(tmp_path, writer="0.33", n=40, failed=2, **kw):
    outs = w.synthetic_outputs(n, seed=7, failed=0 if writer == "2024" else failed)
    return w.write(tmp_path / f"{writer}.json", w.serve_result(outs, writer=writer, **kw)), outs


@pytest.mark.parametrize("writer", WRITERS)
def test_reader_takes_every_field_from_each_writer(tmp_path, writer):
    path, outs = _file(
        tmp_path, writer, request_rate=2.5, burstiness=0.5, max_concurrency=4,
        metadata={"gpu": "h100", "tp": 2},
    )  # fmt: skip
    r = read_vllm_result(path)
    assert isinstance(r, ServeResult) and r.writer.startswith(
        "benchmarks/benchmark_serving.py" if writer == "2024" else f"vllm bench serve ({writer}"
    )
    ok = [o for o in outs if o.success]
    assert (r.completed, r.failed) == (len(ok), len(outs) - len(ok))
    assert (r.request_rate, r.burstiness, r.max_concurrency) == (2.5, 0.5, 4)
    assert r.metadata == {"gpu": "h100", "tp": "2"}
    assert r.model_id == "meta-llama/Llama-3.1-8B-Instruct" and r.num_prompts == len(outs)
    assert r.total_input_tokens == sum(o.prompt_len for o in ok)
    assert list(r.output_lens) == [o.output_tokens for o in outs]
    assert list(r.ttfts_s) == [o.ttft for o in outs] and list(r.success) == [
        o.success for o in outs
    ]
    assert [list(x) for x in r.itls_s] == [o.itl for o in outs]
    assert (r.latencies_s is not None) == (writer == "0.33")


@pytest.mark.parametrize("writer", WRITERS)
def test_summaries_recomputed_from_the_per_request_lists_match_the_file(tmp_path, writer):
    """Our reading of the format is the writer's: every summary it wrote (means, medians,
    std, p99 of TTFT, TPOT, ITL, E2EL; both throughputs) recomputed from the lists."""
    path, _ = _file(tmp_path, writer, metrics=("ttft", "tpot", "itl", "e2el"))
    r = read_vllm_result(path)
    data = json.loads(open(path).read())
    mine = summaries_from_requests(r)
    keys = [k for k in data if k.endswith("_ms") or k.endswith("_throughput")]
    keys = [k for k in keys if k != "total_token_throughput"]
    assert len(keys) == 18
    for k in keys:
        assert mine[k] == pytest.approx(data[k], rel=1e-12, abs=1e-12), k


def test_early_2024_writer_request_inthroughput(tmp_path):
    path, outs = _file(tmp_path, "early-2024", failed=0)
    r = read_vllm_result(path)
    assert r.writer.startswith("benchmarks/benchmark_serving.py") and not r.detailed
    assert r.summary["request_throughput"] == pytest.approx(len(outs) / 12.5)
    assert set(r.summary) >= {"mean_ttft_ms", "p99_tpot_ms", "output_throughput"}


def test_rate_inf_and_a_file_without_save_detailed(tmp_path):
    path, outs = _file(tmp_path, "0.26", detailed=False)
    r = read_vllm_result(path)
    assert math.isinf(r.request_rate) and r.max_concurrency is None and not r.detailed
    assert r.summary["mean_ttft_ms"] == pytest.approx(
        1000 * np.mean([o.ttft for o in outs if o.success]), rel=1e-12
    )


@pytest.mark.parametrize("writer", ("0.33", "0.26"))
def test_latency_json(tmp_path, writer):
    path = w.write(tmp_path / "lat.json", w.latency_result([1.5, 1.25, 1.75], writer), indent=4)
    r = read_vllm_result(path)
    assert isinstance(r, LatencyResult) and r.avg_latency_s == pytest.approx(1.5)
    assert r.percentiles_s[50] == pytest.approx(1.5) and sorted(r.percentiles_s) == [
        10, 25, 50, 75, 90, 99
    ]  # fmt: skip
    assert r.model_id == ("meta-llama/Llama-3.1-8B" if writer == "0.33" else "")


def _broken(tmp_path, change):
    outs = w.synthetic_outputs(30, seed=3, failed=1)
    data = json.loads(json.dumps(w.serve_result(outs)))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda d: d.pop("completed"), "missing key(s) completed"),
        (lambda d: d["ttfts"].pop(), "'ttfts' has 29 entries"),
        (lambda d: d.__setitem__("completed", 28), "completed"),
        (lambda d: d["output_lens"].__setitem__(0, d["output_lens"][0] + 1), "total_output_tokens"),
        (lambda d: d["itls"][0].append(5.0), "mean_itl_ms"),
        (lambda d: d["latencies"].__setitem__(0, 9.0), "mean_tpot_ms"),
        (lambda d: d.__setitem__("request_rate", -1), "request_rate"),
        (lambda d: d.pop("itls"), "without itls"),
        (lambda d: d.__setitem__("max_concurrency", "four"), "max_concurrency"),
    ],
)
def test_inconsistent_files_are_refused_naming_the_key(tmp_path, change, fragment):
    with pytest.raises(PerfModelError, match="bad.json") as exc:
        read_vllm_result(_broken(tmp_path, change))
    assert fragment in str(exc.value)


def test_not_a_vllm_result(tmp_path):
    for text, fragment in (
        ('{"foo": 1}', "not a vLLM benchmark result"),
        ("[1, 2]", "JSON object"),
        ('{"a": 1}\n{"b": 2}', "--append-result"),
        ("{", "not valid JSON"),
    ):
        p = tmp_path / "x.json"
        p.write_text(text)
        with pytest.raises(PerfModelError, match=fragment):
            read_vllm_result(p)


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    """Through the entry point: not a vLLM result; a model whose context cannot hold the
    file's requests (Mistral-7B-v0.3: 32768 tokens)."""
    p = tmp_path / "other.json"
    p.write_text('{"results": []}')
    assert_one_line_error(
        run_cli("validate", "--measurements", str(p), "--gpu", "h100"), "other.json", "not a vLLM"
    )
    outs = w.synthetic_outputs(5, seed=1)
    outs[0].prompt_len = 40_000
    big = w.write(tmp_path / "long.json", w.serve_result(outs, model_id="my-finetune"))
    proc = run_cli("validate", "--measurements", big, "--gpu", "h100", "--model", "mistral-7b")
    assert_one_line_error(proc, "long.json", "exceed", "32768")


def test_a_ramp_up_run_is_read_but_not_replayed(tmp_path):
    from perfmodel.accuracy.vllm_replay import replay_serve
    from perfmodel.core.deployment import make_deployment

    path, _ = _file(tmp_path, "0.33", request_rate=4.0)
    data = json.loads(open(path).read()) | {"ramp_up_strategy": "linear", "ramp_up_start_rps": 1}
    open(path, "w").write(json.dumps(data))
    r = read_vllm_result(path)
    assert r.ramp_up == "linear"
    with pytest.raises(PerfModelError, match="ramp-up-strategy linear"):
        replay_serve(r, make_deployment("8b", "h100", 1))
