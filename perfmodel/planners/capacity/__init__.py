"""Capacity planner: fleet size and cost per GPU type under TTFT/TPOT SLOs.

workload (inputs) -> search (candidates, vectorized) -> queueing (closed-form per-replica
formulas) -> plan (cheapest option, simulation check, curves) with simulate (the check).
"""
