"""The BENCH option group: what a vLLM benchmark file may not record (validate, calibrate),
declared once (cli/option_groups.py: how a group becomes a command's flags). Apart from the
deployment groups, so that the commands that read no benchmark file do not build it."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.option_groups import OptionGroup
from perfmodel.cli.typer_app import ProfileOpt
from perfmodel.core.bench_options import BenchOptions

# None = from the file
BenchModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "--target", "-m", help="vLLM JSON: model (default: the file's model_id)."
    ),
]
BenchGpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="vLLM JSON: the GPU it ran on (or metadata gpu=...).")
]
BenchNumGpusOpt = Annotated[
    int | None, typer.Option("--num-gpus", "-n", min=1, help="vLLM JSON: GPUs of the server.")
]
BenchTpOpt = Annotated[
    int | None, typer.Option("--tp", min=1, help="vLLM JSON: tensor-parallel degree.")
]
BenchSeqsOpt = Annotated[
    int | None,
    typer.Option("--max-num-seqs", min=1, help="vLLM JSON: the server's max_num_seqs."),
]
BenchTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-num-batched-tokens", min=1, help="vLLM JSON: the server's max_num_batched_tokens."
    ),
]
BenchBatchOpt = Annotated[
    int | None, typer.Option("--batch", "--bsz", min=1, help="vllm bench latency: --batch-size.")
]
BenchPromptOpt = Annotated[
    int | None, typer.Option("--prompt-len", min=1, help="vllm bench latency: --input-len.")
]
BenchOutputOpt = Annotated[
    int | None, typer.Option("--output-len", min=1, help="vllm bench latency: --output-len.")
]
BENCH = OptionGroup(
    BenchOptions,
    {
        "model": BenchModelOpt,
        "gpu": BenchGpuOpt,
        "num_gpus": BenchNumGpusOpt,
        "tp": BenchTpOpt,
        "max_num_seqs": BenchSeqsOpt,
        "max_num_batched_tokens": BenchTokensOpt,
        "batch": BenchBatchOpt,
        "prompt_len": BenchPromptOpt,
        "output_len": BenchOutputOpt,
        "profile": ProfileOpt,  # validate: for measurement tables too; calibrate: --base
    },
)
