"""Specs: what a run is made of, read from data files (GPUs, models, efficiency profiles,
dtypes, units). The lowest layer: it imports nothing above it."""
