"""``perfmodel profile``: run a measurement sweep with the torch or vLLM runner, or (--ops)
the operator microbenchmarks of one model.

Parses and renders only: which runner accepts which options is decided in
profiler.sweep_setup, whose RunnerOptions record the RUNNER group below declares as flags
(once). torch, vLLM, NVML and rich are imported only when the command runs; this module is
imported only for `profile` and a bare `--help`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from perfmodel.cli.option_groups import OptionGroup, option_group
from perfmodel.cli.typer_app import (
    BatchOpt,
    JsonOpt,
    ModelOpt,
    OutputOpt,
    PromptOpt,
    app,
    emit_json,
)
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural
from profiler.sweep_setup import RunnerOptions

# the runner's settings (profiler.sweep_setup.RunnerOptions), each flag declared once here;
# --tp, --weight-dtype and --kv-dtype are the engine's (vLLM), not a modelled deployment
RUNNER = OptionGroup(
    RunnerOptions,
    {
        "repeats": Annotated[int, typer.Option("--repeats", help="Timed runs per point.")],
        "warmup": Annotated[int, typer.Option("--warmup", help="Untimed runs per point first.")],
        "tp": Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel degree (vLLM).")],
        "weight_dtype": Annotated[
            str | None, typer.Option("--weight-dtype", help="bf16 | fp8 (vLLM); torch: = --dtype")
        ],
        "kv_dtype": Annotated[str | None, typer.Option("--kv-dtype", help="bf16 | fp8 (vLLM)")],
        "dtype": Annotated[
            str | None,
            typer.Option(
                "--dtype", help="torch runner compute dtype (default bf16 on GPU, fp32 on CPU)"
            ),
        ],
        "device": Annotated[str, typer.Option("--device", help="torch runner: auto | cpu | cuda")],
        "enforce_eager": Annotated[
            bool,
            typer.Option(
                "--enforce-eager/--no-enforce-eager", help="vLLM: no CUDA graphs / compile."
            ),
        ],
        "chunked_prefill": Annotated[
            bool,
            typer.Option("--chunked-prefill/--no-chunked-prefill", help="vLLM chunked prefill."),
        ],
        "max_num_seqs": Annotated[
            int | None, typer.Option("--max-num-seqs", min=1, help="vLLM (default: largest batch).")
        ],
        "max_num_batched_tokens": Annotated[
            int | None,
            typer.Option(
                "--max-num-batched-tokens", min=1, help="vLLM (default: largest batch x prompt)."
            ),
        ],
        "gpu_memory_utilization": Annotated[
            float, typer.Option("--gpu-memory-utilization", help="vLLM memory fraction.")
        ],
        "attention_backend": Annotated[
            str | None,
            typer.Option("--attention-backend", help="vLLM engine argument, e.g. FLASH_ATTN."),
        ],
        "async_scheduling": Annotated[
            bool,
            typer.Option(
                "--async-scheduling/--no-async-scheduling",
                help="vLLM async scheduling (default off: it adds a step launch to TTFT).",
            ),
        ],
        "threads": Annotated[
            int | None, typer.Option("--threads", min=1, help="torch runner CPU threads.")
        ],
        "seed": Annotated[int, typer.Option("--seed", help="Random weights and prompts.")],
        "cuda_graph": Annotated[
            bool,
            typer.Option(
                "--cuda-graph/--no-cuda-graph",
                help="torch runner on CUDA: decode step captured in a CUDA graph (off on CPU).",
            ),
        ],
        "rope": Annotated[
            bool,
            typer.Option(
                "--rope/--no-rope",
                help="torch runner: apply rotary embeddings (--no-rope measures like the shipped "
                "reference H100 set, which leaves RoPE out).",
            ),
        ],
        "decode_only": Annotated[
            bool,
            typer.Option(
                "--decode-only",
                help="torch runner: fill the KV cache with random values instead of a prefill "
                "(decode tables at long contexts; no TTFT).",
            ),
        ],
    },
)


@app.command("profile")
@option_group("options", RUNNER, after={"output_len": ("repeats", "warmup")})
def profile(
    *,
    model: ModelOpt,
    out: Annotated[str, typer.Option("--out", help="Results CSV (appended to with --resume).")],
    runner: Annotated[str, typer.Option("--runner", help="torch | vllm")] = "vllm",
    batch: BatchOpt = "1",
    prompt_len: PromptOpt = "512",
    output_len: OutputOpt = "64",
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip points already in --out; append the rest.")
    ] = False,
    options: RunnerOptions,
    ops: Annotated[
        bool,
        typer.Option(
            "--ops", help="Operator microbenchmarks of the model's shapes instead of a sweep."
        ),
    ] = False,
    gpu_index: Annotated[
        int | None, typer.Option("--gpu-index", min=0, help="--ops: CUDA device index.")
    ] = None,
    max_m: Annotated[
        int | None, typer.Option("--max-m", min=1, help="--ops: largest GEMM token count M.")
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Measure TTFT and TPOT over batch x prompt-len x output-len; one CSV row per point.
    With --ops: time the cost model's operators for the model's shapes (operator table)."""
    from perfmodel.planners.feasibility.outputs import check_output_path
    from profiler.sweep_setup import runner_dtype

    # before any work: a CSV file (the runner creates missing folders), never a directory
    check_output_path(out, "--out", (".csv",), make_folders=True)
    if ops:
        dtype = runner_dtype(options.dtype, "--dtype")
        _profile_ops(model, out, options.device, dtype, options.tp, gpu_index,
                     resume, max_m, progress and not json_out, json_out)  # fmt: skip
        return
    from perfmodel.specs.units import parse_size_list
    from profiler import fingerprint
    from profiler.sweep import ResultsFile, grid, run_sweep
    from profiler.sweep_setup import build_sweep

    points = grid(
        parse_size_list(batch, "--batch"),
        parse_size_list(prompt_len, "--prompt-len"),
        parse_size_list(output_len, "--output-len"),
    )
    # the one context rule (specs.context), before any work: a point beyond the window would
    # be measured on positions the model was never built for; a measurement: no option
    from perfmodel.specs.context import context_problem
    from perfmodel.specs.models import load_model

    problem = context_problem(
        load_model(model), [p.prompt_len for p in points], [p.output_len for p in points], None
    )
    if problem is not None:
        raise PerfModelError(problem[0])
    setup = build_sweep(runner, model, points, options)
    results = ResultsFile(out, setup.spec.model, resume)
    try:
        summary = run_sweep(
            setup.runner,
            setup.spec,
            points,
            results,
            lambda: fingerprint.collect(use_gpu=setup.runner.uses_gpu),
            progress=progress and not json_out,
            memory=setup.memory,
        )
    except KeyboardInterrupt:
        # run_sweep has said what was kept. typer would turn KeyboardInterrupt into Exit(130),
        # which perfmodel.cli.main (standalone_mode=False) drops, exiting 0; SystemExit
        # reaches main's handler and keeps the conventional 130.
        raise SystemExit(130) from None
    if json_out and not summary.poisoned:
        emit_json(summary.as_json())
        return
    if not json_out:
        _print_summary(summary)
    if summary.poisoned:
        _continue_in_fresh_process(summary.poisoned)


def _continue_in_fresh_process(why: str) -> None:
    """A CUDA fault stopped the sweep: the rest runs in a fresh process (--resume)."""
    from perfmodel.cli.typer_app import ARGV
    from profiler.sweep import MAX_FRESH_PROCESSES, resume_in_fresh_process

    print(f"{why}; going on in a fresh process (--resume)", file=sys.stderr, flush=True)
    code = resume_in_fresh_process(ARGV)
    if code is None:
        raise PerfModelError(
            f"{why}; {MAX_FRESH_PROCESSES} fresh processes already used: rerun with --resume"
        )
    if code:
        raise SystemExit(code)


def _profile_ops(model, out, device, dtype, tp, gpu_index, resume, max_m, progress, json_out):
    """``profile --ops``: the operator table of one model (profiler.ops_bench)."""
    from perfmodel.specs.models import load_model
    from profiler.ops_bench import run_ops
    from profiler.sweep_setup import config_path_of, model_column

    spec_model = load_model(model)
    config_path = config_path_of(spec_model)

    def show(row: dict) -> None:
        where = ",".join(f"{k}={row[k]}" for k in ("m", "k", "n", "batch", "context") if row.get(k))
        print(f"{row['kernel']:<12} {row['shape']:<24} {where:<28} {row.get('time_ms', '')!s:.8}"
              f" ms {row['status']}", file=sys.stderr, flush=True)  # fmt: skip

    summary = run_ops(
        spec_model,
        model_column(spec_model, config_path),
        out,
        device=device,
        dtype=dtype,
        tp=tp,
        gpu_index=gpu_index,
        resume=resume,
        max_m=max_m,
        on_row=show if progress else None,
    )
    result = {
        "rows_written": summary.written,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "out": summary.out,
    }
    if json_out:
        emit_json(result)
    else:
        print(
            f"wrote {summary.written} operator rows to {summary.out} (skipped {summary.skipped} "
            f"already measured, {summary.failed} failed)"
        )


def _print_summary(summary) -> None:
    from rich.console import Console

    from perfmodel.cli.table import Table

    console = Console()
    if summary.rows:
        table = Table("batch", "prompt", "output", "ttft_ms", "tpot_ms", "ttft_cv", "status")
        for row in summary.rows:
            table.add_row(
                row["batch_size"],
                row["prompt_len"],
                row["output_len"],
                _ms(row["ttft_s"]),
                _ms(row["tpot_s"]),
                row["ttft_cv"],
                row["status"],
            )
        console.print(table)
    split = (
        f", {summary.split} split: prefill over several engine steps, see note"
        if summary.split
        else ""
    )
    console.print(
        f"wrote {plural(summary.rows_written, 'row')} to {summary.out} (skipped {summary.skipped} "
        f"already measured, {summary.oom} oom, {plural(summary.errors, 'error')}{split})",
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.flush()


def _ms(text: str) -> str:
    try:
        return f"{float(text) * 1e3:.3f}"
    except ValueError:
        return text
