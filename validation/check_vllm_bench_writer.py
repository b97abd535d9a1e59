"""Check tests/vllm_bench_writer.py against the real writer in vLLM wheels.

    pip download vllm==0.26.0 --no-deps -d wheels/ && pip download vllm==0.33.0 --no-deps -d wheels/
    python validation/check_vllm_bench_writer.py wheels/vllm-*.whl

For each wheel: `calculate_metrics` of vllm/benchmarks/serve.py, the `BenchmarkMetrics` it
fills and `RequestFuncOutput` of vllm/benchmarks/lib/endpoint_request_func.py are taken from
the wheel's source (ast, no vLLM import) and run on the same synthetic requests (two failed)
as the test helper's `calculate_metrics`; every metric must be equal. Run 2026-12-04 on
0.26.0 and 0.33.0: 23 metrics compared, none differing.
"""

from __future__ import annotations

import ast
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import vllm_bench_writer as writer  # noqa: E402

NAMES = {"BenchmarkMetrics", "calculate_metrics", "RequestFuncOutput"}


def _load(wheel: Path) -> dict:
    ns = {
        "np": np, "warnings": warnings, "dataclass": dataclass, "field": field, "Any": object,
        "TokenizerLike": object, "SampleRequest": object, "RequestFuncOutput": object,
        "MILLISECONDS_TO_SECONDS_CONVERSION": 1000, "TERM_PLOTLIB_AVAILABLE": False,
    }  # fmt: skip
    with zipfile.ZipFile(wheel) as zf:
        for member in ("vllm/benchmarks/lib/endpoint_request_func.py", "vllm/benchmarks/serve.py"):
            for node in ast.parse(zf.read(member).decode()).body:
                if getattr(node, "name", None) in NAMES:
                    exec(compile(ast.Module([node], []), member, "exec"), ns)  # noqa: S102
    return ns


def check(wheel: Path) -> list[str]:
    ns = _load(wheel)
    outs = writer.synthetic_outputs(50, seed=3, failed=2)
    real = []
    for o in outs:
        r = ns["RequestFuncOutput"]()
        r.success, r.output_tokens, r.ttft, r.itl = o.success, o.output_tokens, o.ttft, list(o.itl)
        r.latency, r.prompt_len, r.start_time, r.error = o.latency, o.prompt_len, 0.1, o.error
        real.append(r)
    metrics, lens = ns["calculate_metrics"](None, real, 12.5, None, [99.0], {})
    mine, mine_lens = writer.calculate_metrics(outs, 12.5)
    bad = [k for k in mine if getattr(metrics, k) != mine[k]]
    return bad + (["actual_output_lens"] if lens != mine_lens else [])


if __name__ == "__main__":
    for path in sys.argv[1:]:
        differing = check(Path(path))
        print(
            f"{Path(path).name}: {'equal' if not differing else 'DIFFERENT: ' + ', '.join(differing)}"
        )
