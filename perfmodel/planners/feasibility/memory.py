"""Memory: weights + KV cache + activations of the target, plus the helper models (SpecPrefill's
speculator, MagicDec's draft) on the GPUs that hold them (core.memory.memory_report with the
helper's bytes as extra_bytes: on every GPU at pp = 1, on the first stage's GPUs at pp > 1,
where planners.speculation places the helper)."""

from __future__ import annotations

import numpy as np

from perfmodel.core.deployment import Deployment
from perfmodel.core.memory import memory_report
from perfmodel.planners.feasibility.reasons import MEMORY, Reason, Verdict
from perfmodel.specs.units import plural


def memory_verdict(
    dep: Deployment, batch, prompt_len, output_len, extra_bytes=0.0, helper: str = ""
) -> Verdict:
    """Feasible when every (batch, prompt, output) point fits per GPU; otherwise the worst
    point, with the GB it needs and has. extra_bytes: a helper model's bytes per GPU
    (planners.speculation.helper_memory(...).total(batch)); helper names it in the message."""
    rep = memory_report(dep, batch, prompt_len, output_len, extra_bytes=extra_bytes)
    fits = np.asarray(rep.fits, bool)
    if fits.all():
        return Verdict()
    total = np.asarray(rep.total_gb, float) * np.ones_like(fits, float)
    worst = float(np.max(np.where(fits, -np.inf, total)))
    cap = float(rep.capacity_gb)
    beside = f" with {helper} beside it" if helper else ""
    message = (
        f"{dep.model.name} on {dep.num_gpus}x {dep.gpu.name} (TP{dep.tp}"
        + (f" PP{dep.pp}" if dep.pp > 1 else "")
        + f", {dep.weight_dtype}/{dep.kv_dtype}){beside} needs {worst:.1f} GB per GPU "
        f"of {cap:.1f} GB usable ({(~fits).sum()} of {plural(fits.size, 'point')} "
        f"{'does' if (~fits).sum() == 1 else 'do'} not fit)"
    )
    return Verdict((Reason(MEMORY, message, cap, worst),))
