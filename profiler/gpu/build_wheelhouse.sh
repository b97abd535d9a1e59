#!/usr/bin/env bash
# Rebuild profiler/gpu/wheelhouse: the cp312 manylinux x86_64 wheels that `perfmodel profile`
# needs on the lent GPU machine (Python 3.12, no index). ~21 MB; numpy is the bulk of it.
# Usage: bash profiler/gpu/build_wheelhouse.sh [python-version, default 3.12] [dir]
set -euo pipefail
PYV=${1:-3.12}
DIR=${2:-$(dirname "$0")/wheelhouse}
ABI=cp${PYV/./}
mkdir -p "$DIR"
python -m pip download -q --only-binary=:all: --python-version "$PYV" --implementation cp \
  --abi "$ABI" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any -d "$DIR" \
  typer rich pydantic pyyaml numpy nvidia-ml-py
du -sh "$DIR"
