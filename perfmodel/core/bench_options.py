"""What the user says about a vLLM benchmark run (`validate`/`calibrate --measurements
FILE.json`): the deployment and engine settings the file may not record, and the batch and
lengths a `vllm bench latency` file never records. None = from the file's metadata, else the
default (accuracy/vllm_setup.py). The CLI declares the flags once (cli/bench_group.BENCH).

It lives in core, not in accuracy/, so that declaring the flags loads no accuracy module, and
apart from core/options.py (the deployment a command names), so that the commands that read
no benchmark file do not define it (tests/test_call_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class BenchOptions:
    """None = not given. batch, prompt_len, output_len: the shape of a latency run."""

    model: str | None = None
    gpu: str | None = None
    num_gpus: int | None = None
    tp: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    batch: int | None = None
    prompt_len: int | None = None
    output_len: int | None = None
    profile: str | None = None  # validate's --profile, calibrate's --base

    def given(self, key: str):
        """The value given for a deployment or engine key (None: not given, or not an
        option: the file's metadata decides)."""
        return getattr(self, key, None)

    @property
    def shape(self) -> tuple[int | None, int | None, int | None] | None:
        """(batch, prompt_len, output_len) of a latency run, None when none is given."""
        shape = (self.batch, self.prompt_len, self.output_len)
        return None if shape == (None, None, None) else shape

    def names_given(self) -> list[str]:
        """The fields given (profile aside: it also applies to measurement tables)."""
        return [
            f.name for f in fields(self) if f.name != "profile" and self.given(f.name) is not None
        ]
