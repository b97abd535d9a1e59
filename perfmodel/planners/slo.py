"""The latency SLOs a plan assumes when the user gives none: one home for every command and
dashboard page.

- Capacity (``perfmodel capacity``, the dashboard's capacity page): TTFT <= 2 s and
  TPOT <= 50 ms per request, an interactive chat service's usual targets.
- SpecPrefill's max-QPS estimate: a TTFT SLO of ``SPECPREFILL_SLO_FACTOR`` x the baseline
  TTFT of one request of the planned prompt length (the SLO scales with the prompt, so a
  128k-token prompt is not held to a chat target).
"""

from __future__ import annotations

DEFAULT_SLO_TTFT_S = 2.0
DEFAULT_SLO_TPOT_S = 0.05
SPECPREFILL_SLO_FACTOR = 2.0
