"""What a user says about a deployment, before anything is loaded: the options every command
and dashboard page share (model, GPU, counts, parallelism, dtypes, profile, mode).

`DeploymentOptions` names one deployment; `DeploymentPins` the parts of a deployment a
planner searches (recommend, capacity) that the user fixed (a vLLM benchmark file's options:
core/bench_options.py). Each is the one declaration of
these choices; the CLI builds it from its flags (perfmodel/cli/option_groups.py declares each
flag once), a page from its widgets. `DeploymentOptions.deployment()` validates and loads it
(make_deployment: one clear error line).

The workload's lengths (batch, prompt, output) are not fields: commands differ in what they
take (predict sweeps lists, recommend and specprefill take one value, capacity a workload
file, validate a latency run's integers), so each length flag is declared once per kind in
cli/typer_app.py (BatchOpt, BatchOneOpt, PromptOpt, ...) and parsed by specs.units.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.specs.dtypes import precisions_for
from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.models import ModelSpec


@dataclass(frozen=True)
class DeploymentOptions:
    """One deployment as named by the user. tp None = num_gpus / pp; ep: expert parallelism
    (MoE); weight_dtype None = the checkpoint's quantization_config, else bf16; mode and
    profile None = the profile fitted for the GPU and its mode; allow_cross_node_tp: a TP group
    may span nodes (core.deployment.topology_problem, priced over the inter-node network)."""

    model: str = "8b"
    gpu: str = "h100"
    num_gpus: int = 1
    tp: int | None = None
    pp: int = 1
    ep: int = 1
    weight_dtype: str | None = None
    kv_dtype: str = "bf16"
    mode: str | None = None
    profile: str | None = None
    allow_cross_node_tp: bool = False  # TP across nodes refused unless asked for

    def deployment(
        self, model: ModelSpec | None = None, gpu: HardwareSpec | None = None
    ) -> Deployment:
        """Validate and load the specs (raises PerfModelError naming the bad option).
        model, gpu: self.model and self.gpu already resolved by the caller (not read again)."""
        return make_deployment(
            model or self.model,
            gpu or self.gpu,
            self.num_gpus,
            self.tp,
            self.weight_dtype,
            self.kv_dtype,
            self.mode,
            self.profile,
            pp=self.pp,
            ep=self.ep,
            allow_cross_node_tp=self.allow_cross_node_tp,
        )


@dataclass(frozen=True)
class DeploymentPins:
    """A deployment a planner searches, as far as the user fixed it; None = searched (GPU
    type, GPUs per replica, TP, PP, weight and KV dtypes). The rule for the counts is the
    planner's (planners.recommend: tp = --tp or N / pp, pp = --pp or 1); mode and profile
    None = the profile fitted for each GPU and its mode."""

    model: str = "70b"
    gpu: str | None = None
    num_gpus: int | None = None
    tp: int | None = None
    pp: int | None = None
    weight_dtype: str | None = None
    kv_dtype: str | None = None
    mode: str | None = None
    profile: str | None = None
    allow_cross_node_tp: bool = False  # TP across nodes refused unless asked for

    def precisions(self, checkpoint_format: str | None, searched) -> tuple[tuple[str, str], ...]:
        """The (weights, KV) pairs to search: with a dtype pinned, that one pair (an unpinned
        weight dtype is the checkpoint's format, else bf16; an unpinned KV dtype bf16); else
        `searched` as the checkpoint is served (specs.dtypes.precisions_for: never upcast)."""
        if self.weight_dtype or self.kv_dtype:
            weights = self.weight_dtype or checkpoint_format or "bf16"
            return ((weights, self.kv_dtype or "bf16"),)
        return precisions_for(checkpoint_format, searched)
