"""`perfmodel capacity`: fleet sizing under TTFT/TPOT SLOs (being written)."""
