"""The resumable sweep: measure every batch x prompt_len x output_len point, one CSV row each.

Each finished point is appended to the CSV and flushed and fsynced at once, so a crash,
SIGKILL or Ctrl-C loses nothing already measured. ``resume=True`` skips points already in the
file, keyed by (model, runner, batch, prompt, output, tp, weight dtype, kv dtype), whatever
their status. A point that runs out of memory is written with status=oom, any other failure
with status=error and the message in ``note``; the sweep goes on either way. A point the
runner measured but whose batch was not prefilled in one engine step is written with
status=split (its timings kept, its reason in ``note``); calibration and validation use only
status=ok rows.

Memory check (``memory``, a profiler.memcheck.MemoryCheck; the CLI gives one for the torch
runner): what the device has is read once before the model is built, and each point's need
(the cost model's estimate) is compared with it before the point runs. The first
point that does not fit ends the sweep with one line (PerfModelError, exit 2; a results file
this run created is removed again); a later one is written with status=oom and the numbers
in ``note``, and the sweep goes on.

Columns: the DESIGN.md "Measurement CSV" core, then fingerprint and extra columns.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from perfmodel.errors import PerfModelError
from profiler.fingerprint import Fingerprint, settings_json
from profiler.memcheck import MemoryCheck, refusal
from profiler.runner import Point, PointResult, ProcessPoisoned, Runner, is_oom

CORE_COLUMNS = (
    "model",
    "gpu",
    "num_gpus",
    "tp",
    "weight_dtype",
    "kv_dtype",
    "batch_size",
    "prompt_len",
    "output_len",
    "ttft_s",
    "tpot_s",
    "ttft_cv",
    "tpot_cv",
    "status",
    "runner",
    "runner_settings",
    "framework_version",
    "gpu_name",
    "driver",
    "timestamp",
)
EXTRA_COLUMNS = (
    "gpu_memory_gb",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "power_limit_w",
    "gpu_count",
    "cpu_model",
    "cpu_count",
    "torch_version",
    "vllm_version",
    "repeats",
    "note",
)
COLUMNS = CORE_COLUMNS + EXTRA_COLUMNS
KEY_COLUMNS = (
    "model",
    "runner",
    "batch_size",
    "prompt_len",
    "output_len",
    "tp",
    "weight_dtype",
    "kv_dtype",
)


@dataclass(frozen=True)
class SweepSpec:
    """What identifies every row of one sweep besides its point."""

    model: str
    runner: str
    tp: int
    num_gpus: int
    weight_dtype: str
    kv_dtype: str


@dataclass
class SweepSummary:
    out: str
    rows_written: int = 0
    skipped: int = 0
    oom: int = 0
    errors: int = 0
    split: int = 0
    interrupted: bool = False
    poisoned: str = ""  # why the sweep stopped: the process can start no new engine
    rows: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "rows_written": self.rows_written,
            "skipped": self.skipped,
            "oom": self.oom,
            "errors": self.errors,
            "split": self.split,
            "out": self.out,
            **({"stopped": self.poisoned} if self.poisoned else {}),
        }


def grid(batches: Iterable[int], prompts: Iterable[int], outputs: Iterable[int]) -> list[Point]:
    """The cartesian product batch x prompt_len x output_len, in that order, duplicates dropped."""
    points = [Point(b, p, o) for b, p, o in itertools.product(batches, prompts, outputs)]
    return list(dict.fromkeys(points))


def point_key(spec: SweepSpec, point: Point) -> tuple[str, ...]:
    values = {
        "model": spec.model,
        "runner": spec.runner,
        "batch_size": point.batch_size,
        "prompt_len": point.prompt_len,
        "output_len": point.output_len,
        "tp": spec.tp,
        "weight_dtype": spec.weight_dtype,
        "kv_dtype": spec.kv_dtype,
    }
    return tuple(str(values[c]) for c in KEY_COLUMNS)


def row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(str(row.get(c, "")).strip() for c in KEY_COLUMNS)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else format(value, ".7g")
    return str(value)


# ---- the results file --------------------------------------------------------------------
class ResultsFile:
    """The CSV being written: checks, resume state, and durable appends."""

    def __init__(self, path: str | Path, model: str, resume: bool):
        self.path = Path(path)
        self.model = model
        self.columns: tuple[str, ...] = COLUMNS
        self.done: set[tuple[str, ...]] = set()
        self._fh = None
        self._created = False  # this run wrote the header into a new or empty file
        self._appended = 0
        self._open(resume)

    def _fail(self, exc: OSError) -> PerfModelError:
        reason = exc.strerror or type(exc).__name__
        return PerfModelError(f"cannot write the results file {self.path}: {reason}")

    def _read_existing(self) -> list[dict[str, str]] | None:
        """Rows of an existing file (None if it is missing or empty); a torn last line from a
        killed run is cut off so the next append starts on a fresh line."""
        try:
            if not self.path.exists() or self.path.stat().st_size == 0:
                return None
            raw = self.path.read_bytes()
        except OSError as exc:
            raise self._fail(exc) from exc
        if not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            try:
                with open(self.path, "r+b") as fh:
                    fh.truncate(cut)
            except OSError as exc:
                raise self._fail(exc) from exc
            raw = raw[:cut]
        if not raw:
            return None
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8", errors="replace")))
        header = tuple(reader.fieldnames or ())
        missing = [c for c in CORE_COLUMNS if c not in header]
        if missing:
            raise PerfModelError(
                f"{self.path} is not a perfmodel measurement CSV (missing columns: "
                f"{', '.join(missing)}); use another --out"
            )
        self.columns = header
        return [row for row in reader if row.get("model") is not None]

    def _open(self, resume: bool) -> None:
        rows = self._read_existing()
        if rows and not resume:
            raise PerfModelError(
                f"{self.path} already holds {len(rows)} measured rows; pass --resume to "
                "continue that sweep, or choose another --out"
            )
        if rows:
            others = sorted(
                {r["model"] for r in rows if r.get("model") and r["model"] != self.model}
            )
            if others:
                raise PerfModelError(
                    f"{self.path} was written for model {others[0]}, not {self.model}; "
                    "use another --out"
                )
            self.done = {row_key(r) for r in rows}
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if rows:
                self._fh = open(self.path, "a", newline="", encoding="utf-8")
            else:
                self._fh = open(self.path, "w", newline="", encoding="utf-8")
                self._append(list(self.columns))
                self._created = True
        except OSError as exc:
            raise self._fail(exc) from exc

    def _append(self, values: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self._fh.write(buf.getvalue())  # one write per row
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, row: dict[str, object]) -> dict[str, str]:
        text = {c: _fmt(row.get(c)) for c in self.columns}
        try:
            self._append([text[c] for c in self.columns])
        except OSError as exc:
            raise self._fail(exc) from exc
        self._appended += 1
        return text

    def discard_if_empty(self) -> None:
        """Close, and remove the file if this run created it and wrote no row."""
        self.close()
        if self._created and not self._appended:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# ---- the sweep ---------------------------------------------------------------------------
def make_row(
    spec: SweepSpec,
    point: Point,
    fingerprint: Fingerprint,
    settings: dict[str, object],
    framework_version: str,
    result: PointResult | None,
    status: str,
    note: str = "",
) -> dict[str, object]:
    row: dict[str, object] = dict(fingerprint.as_row())
    merged = dict(settings)
    if result is not None:
        merged.update(result.extra)
    row.update(
        model=spec.model,
        num_gpus=spec.num_gpus,
        tp=spec.tp,
        weight_dtype=spec.weight_dtype,
        kv_dtype=spec.kv_dtype,
        batch_size=point.batch_size,
        prompt_len=point.prompt_len,
        output_len=point.output_len,
        status=status,
        runner=spec.runner,
        runner_settings=settings_json(merged),
        framework_version=framework_version,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        note=note,
    )
    if result is not None:
        row.update(
            ttft_s=result.ttft_s,
            tpot_s=result.tpot_s,
            ttft_cv=result.ttft_cv,
            tpot_cv=result.tpot_cv,
            repeats=result.repeats,
        )
    return row


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def run_sweep(
    runner: Runner,
    spec: SweepSpec,
    points: list[Point],
    results: ResultsFile,
    fingerprint_fn: Callable[[], Fingerprint],
    progress: bool = True,
    memory: MemoryCheck | None = None,
) -> SweepSummary:
    """Measure the points not yet in ``results``; returns counts. The results file is closed
    at the end, also on Ctrl-C (KeyboardInterrupt is re-raised after the summary line)."""
    summary = SweepSummary(out=str(results.path))
    todo = [p for p in points if point_key(spec, p) not in results.done]
    summary.skipped = len(points) - len(todo)
    if not todo:
        results.close()
        return summary
    check = _memory_check(memory, runner, todo, results)
    bar = _progress(progress) if progress else None
    try:
        runner.setup(todo)
        fingerprint = fingerprint_fn()  # after setup: vLLM must own CUDA first
        settings = runner.settings()
        version = runner.framework_version
        with bar if bar is not None else contextlib.nullcontext():
            task = bar.add_task("profiling", total=len(todo)) if bar is not None else None
            for point in todo:
                if bar is not None:
                    bar.update(
                        task,
                        description=f"b={point.batch_size} p={point.prompt_len} o={point.output_len}",
                    )
                result, status, note, failed = None, "ok", "", False
                refused = check(point) if check is not None else None
                try:
                    if refused:
                        status, note = "oom", f"not run: {refused}"
                    else:
                        result = runner.measure(point)
                        status, note = result.status, result.note
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # one bad point must not end the sweep
                    status = "oom" if is_oom(exc) else "error"
                    note = _one_line(exc)
                    # the traceback's frames hold the failed engine's objects and tensors
                    traceback.clear_frames(exc.__traceback__)
                    failed = True
                row = make_row(spec, point, fingerprint, settings, version, result, status, note)
                summary.rows.append(results.append(row))
                summary.rows_written += 1
                summary.oom += status == "oom"
                summary.errors += status == "error"
                summary.split += status == "split"
                if bar is not None:
                    bar.advance(task)
                if failed:  # outside the except block: nothing keeps the failed engine alive
                    try:
                        runner.recover(note)
                    except ProcessPoisoned as exc:
                        summary.poisoned = str(exc)
                        break
    except KeyboardInterrupt:
        summary.interrupted = True
        print(
            f"interrupted: {summary.rows_written} finished rows are in {results.path}; "
            "rerun with --resume to continue",
            file=sys.stderr,
        )
        raise
    finally:
        results.close()
        runner.close()
    return summary


def _memory_check(
    memory: MemoryCheck | None, runner: Runner, todo: list[Point], results: ResultsFile
) -> Callable[[Point], str | None] | None:
    """The per-point memory check of the module docstring: a function point -> refusal line
    (None when it fits), or None without a check or where the available memory cannot be
    read. Raises PerfModelError when the first point does not fit."""
    have = memory.available() if memory is not None else None
    if have is None:
        return None
    free, where = have

    def check(point: Point) -> str | None:
        need = memory.need(point)
        return refusal(point, need, free, where) if need.total > free else None

    first = check(todo[0])
    if first is not None:
        results.discard_if_empty()
        runner.close()
        raise PerfModelError(first)
    return check


def _progress(enabled: bool = True):
    """A rich progress bar with ETA on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


MAX_FRESH_PROCESSES = 3
FRESH_PROCESS_ENV = "PERFMODEL_FRESH_PROCESS"  # how many fresh processes led to this one


def resume_in_fresh_process(argv: list[str]) -> int | None:
    """After a CUDA fault stopped the sweep (SweepSummary.poisoned), run the same
    `perfmodel` command with --resume in a new Python process (a new CUDA context) and
    return its exit code; None when MAX_FRESH_PROCESSES processes were already used."""
    attempt = int(os.environ.get(FRESH_PROCESS_ENV, "0") or 0) + 1
    if attempt > MAX_FRESH_PROCESSES:
        return None
    args = [*argv, *([] if "--resume" in argv else ["--resume"])]
    cmd = [
        sys.executable,
        "-c",
        "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))",
        *args,
    ]
    env = {**os.environ, FRESH_PROCESS_ENV: str(attempt)}
    return subprocess.run(cmd, env=env, check=False).returncode
