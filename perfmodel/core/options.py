"""What a user says about one deployment, before anything is loaded: the options every
command and dashboard page share (model, GPU, counts, parallelism, dtypes, profile, mode).

`DeploymentOptions` is the one declaration of these choices; the CLI builds it from its flags
(perfmodel/cli/option_groups.py declares each flag once), a page from its widgets, and both
call `.deployment()` to validate and load it (make_deployment: one clear error line).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.core.deployment import Deployment, make_deployment


@dataclass(frozen=True)
class DeploymentOptions:
    """One deployment as named by the user. tp None = num_gpus / pp; ep: expert parallelism
    (MoE); weight_dtype None = the checkpoint's quantization_config, else bf16; mode and
    profile None = the profile fitted for the GPU and its mode."""

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

    def deployment(self) -> Deployment:
        """Validate and load the specs (raises PerfModelError naming the bad option)."""
        return make_deployment(
            self.model,
            self.gpu,
            self.num_gpus,
            self.tp,
            self.weight_dtype,
            self.kv_dtype,
            self.mode,
            self.profile,
            pp=self.pp,
            ep=self.ep,
        )
