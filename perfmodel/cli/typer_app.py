"""The typer application object and the options shared by every command.

Command modules (perfmodel/cli/commands/*.py) import `app` from here and register with
`@app.command()`; perfmodel/cli/main.py imports them all and runs the app. Heavy libraries
(pandas, scipy, plotly, torch) are imported inside the commands, never at module level, so a
cold `perfmodel recommend` stays well under half a second.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Any

import typer

from perfmodel.core.jsonable import json_ready

app = typer.Typer(
    name="perfmodel",
    help="Performance model and profiler for LLM inference: predict TTFT/TPOT, plan "
    "SpecPrefill and MagicDec, size fleets, validate against published measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# the arguments of this invocation (set by perfmodel.cli.main): what a command needs to run
# itself again in a fresh process (profile after a CUDA fault)
ARGV: list[str] = []

# --- shared options (DESIGN.md CLI contract) ---------------------------------------------
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "--target",
        "-m",
        help="Model alias (1b 3b 8b 70b 405b), full name or config.json path.",
    ),
]
GpuOpt = Annotated[
    str,
    typer.Option(
        "--gpu",
        help="GPU: h100, h100-pcie, h200, a100, a100-40gb, rtx4090, l40s, b200, mi300x, or a YAML path.",
    ),
]
NumGpusOpt = Annotated[
    int, typer.Option("--num-gpus", "-n", min=1, help="GPUs serving one replica.")
]
TpOpt = Annotated[
    int | None, typer.Option("--tp", min=1, help="Tensor-parallel degree (default: --num-gpus).")
]
PpOpt = Annotated[
    int,
    typer.Option(
        "--pp",
        min=1,
        help="Pipeline stages per replica: layers split over PP groups of TP GPUs (default 1).",
    ),
]
EpOpt = Annotated[
    int,
    typer.Option(
        "--ep",
        min=1,
        help="Expert parallelism (MoE): experts spread over EP GPUs, attention in EP/TP "
        "groups of TP GPUs on their share of the batch (default 1: experts TP-split).",
    ),
]


def known_dtype(kind: str):
    """An option callback refusing an unknown weight or KV dtype at parse time, so the one
    error line names the flag (specs.dtypes' message lists what is accepted)."""

    def check(value: str | None) -> str | None:
        if value is not None:
            from perfmodel.errors import PerfModelError
            from perfmodel.specs import dtypes

            try:
                (dtypes.weight_bytes if kind == "weight" else dtypes.kv_bytes)(value)
            except PerfModelError as exc:
                raise typer.BadParameter(str(exc)) from None
        return value

    return check


WeightDtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--weight-dtype",
        callback=known_dtype("weight"),
        help="bf16 | fp8 | fp8-block | int4 | mxfp4 | nvfp4 (default: the checkpoint's "
        "quantization_config, else bf16)",
    ),
]
KvDtypeOpt = Annotated[
    str, typer.Option("--kv-dtype", help="bf16 | fp8", callback=known_dtype("kv"))
]
ModeOpt = Annotated[
    str | None, typer.Option("--mode", help="roofline | additive (default: the profile's).")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Efficiency profile name or YAML path (default: fitted for the GPU; 'ideal' = peak).",
    ),
]
CrossNodeTpOpt = Annotated[
    bool,
    typer.Option(
        "--allow-cross-node-tp",
        help="Allow a TP group across nodes (priced over the inter-node network, labelled); "
        "refused otherwise.",
    ),
]
BeyondContextOpt = Annotated[
    bool,
    typer.Option(
        "--beyond-context",
        help="Model prompt+output beyond the model's context window (labelled); refused otherwise.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
BatchOpt = Annotated[
    str, typer.Option("--batch", "--bsz", "-b", help="Batch size(s), e.g. 64 or 1,8,64.")
]
PromptOpt = Annotated[
    str, typer.Option("--prompt-len", "-p", help="Prompt length(s), e.g. 4k or 4k,32k.")
]
OutputOpt = Annotated[
    str, typer.Option("--output-len", "-o", help="Generated tokens per request, e.g. 512.")
]
# Commands that plan for one workload take one value; the help must not promise a list.
BatchOneOpt = Annotated[
    str, typer.Option("--batch", "--bsz", "-b", help="Batch size (one value), e.g. 64.")
]
PromptOneOpt = Annotated[
    str, typer.Option("--prompt-len", "-p", help="Prompt length (one value), e.g. 4k or 32k.")
]


def emit_json(payload: Any) -> None:
    """Print JSON to stdout; NaN/inf become null so the output is strict JSON. Indented for
    reading, except output over ~1 MB (e.g. every point of a 400k-row validation), which is
    written compact by the C encoder: indenting uses Python's slow encoder."""
    flush_warnings()
    cleaned = json_ready(payload)
    text = json.dumps(cleaned, allow_nan=False)
    if len(text) < 1_000_000:
        text = json.dumps(cleaned, indent=2)
    typer.echo(text)


def console():
    """A rich console on stdout (imported lazily); 140 columns when not a terminal, so
    piped output and logs are not squeezed to 80."""
    from rich.console import Console

    flush_warnings()
    return Console(width=None if _isatty(sys.stdout) else 140)


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced stream
        return False


# Warnings raised while a command checks its inputs are held back (main() turns this on):
# if a check then fails, the user sees only the error line, not warnings before it. They are
# printed as soon as the command prints anything (console(), emit_json, progress) or ends.
_held: list[str] | None = None


def hold_warnings(on: bool) -> None:
    """Start (True) or stop (False, discarding what is held) holding warnings back."""
    global _held
    _held = [] if on else None


def flush_warnings() -> None:
    """Print the held warnings (if any) on stderr; later warnings print at once."""
    global _held
    held, _held = _held, None
    for line in held or ():
        print(line, file=sys.stderr)


def warn(message: str) -> None:
    """A one-line warning on stderr (never on stdout, so --json output stays parseable)."""
    line = f"warning: {message}"
    if _held is not None:
        _held.append(line)
    else:
        print(line, file=sys.stderr)


@contextlib.contextmanager
def progress(description: str, total: float | None = None):
    """A transient rich progress bar on stderr for long work; yields `advance(n=1)`.

    Shown only when stderr is a terminal (never in pipes, logs or --json captures); a
    total of None shows a spinner with the count of steps done."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    flush_warnings()
    columns = (
        [SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:.0f}")]
        if total is None
        else [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    )
    bar = Progress(
        *columns,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not _isatty(sys.stderr),
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
