"""The speculation layer under every planner: the helper model's deployment, its acceptance
basis and its memory beside the target (deploy, acceptance, drafts). Planners call these;
nothing else decides them."""

from perfmodel.planners.speculation.acceptance import (
    ASSUMED_ACCEPTANCE,
    AcceptanceBasis,
    resolve_bases,
)
from perfmodel.planners.speculation.deploy import (
    FIRST_STAGE,
    HELPER_WEIGHT_DTYPE,
    OWN_GPUS,
    SELF,
    HelperMemory,
    default_speculator,
    describe_placement,
    helper_deployment,
    helper_memory,
    helper_placement,
    smaller_models,
)
from perfmodel.planners.speculation.drafts import DraftConfig, draft_configs

__all__ = [
    "ASSUMED_ACCEPTANCE",
    "AcceptanceBasis",
    "DraftConfig",
    "FIRST_STAGE",
    "OWN_GPUS",
    "HELPER_WEIGHT_DTYPE",
    "HelperMemory",
    "SELF",
    "default_speculator",
    "describe_placement",
    "draft_configs",
    "helper_deployment",
    "helper_memory",
    "helper_placement",
    "resolve_bases",
    "smaller_models",
]
