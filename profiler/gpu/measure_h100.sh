#!/usr/bin/env bash
# One prepared call on a lent GPU (issue 12): operator tables and CUDA-graph torch sweeps.
#
#   bash profiler/gpu/measure_h100.sh          # in the repo root; results in $OUT (./gpu_out)
#
# Needs: python3 with torch (CUDA); carried: profiler/gpu/wheelhouse (typer, rich, pydantic,
# pyyaml, numpy, nvidia-ml-py wheels for cp312; only the missing ones are installed, no index).
# perfmodel runs from the source tree (PYTHONPATH=.), nothing else is installed.
# Without CUDA it rehearses every step with tiny shapes (the tiny-llama test config).
# Order = importance: 8B ops, 8B decode, 8B prefill, Qwen2.5-7B decode/prefill, 1B, extras.
# Results: $OUT/measurements.tgz holds every file (the device tool returns at most 8 files).
# Every CSV row is fsynced as it is measured, so a timeout still leaves partial data; each step
# is bounded by `timeout` and the whole run by BUDGET_S (default 390 s).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu_out}
BUDGET_S=${BUDGET_S:-390}
WHEELHOUSE=${WHEELHOUSE:-profiler/gpu/wheelhouse}
PY=${PYTHON:-}
if [ -z "$PY" ]; then  # the first interpreter that has torch
  for cand in python3 python python3.12; do
    if command -v "$cand" >/dev/null && "$cand" -c "import torch" 2>/dev/null; then PY=$cand; break; fi
  done
  PY=${PY:-python3}
fi
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/measure.log") 2>&1

elapsed() { echo $(($(date +%s) - START)); }
step() {  # step NAME CAP_S CMD...: run CMD bounded by min(CAP_S, budget left)
  local name=$1 cap=$2 left t rc
  shift 2
  left=$((BUDGET_S - $(elapsed)))
  if [ "$left" -lt 20 ]; then echo "== SKIP $name (budget spent at $(elapsed)s)"; return 0; fi
  t=$((cap < left ? cap : left))
  echo "== $name (timeout ${t}s, at $(elapsed)s)"
  timeout -k 10 "$t" "$@"
  rc=$?
  echo "== $name rc=$rc at $(elapsed)s" | tee -a "$OUT/steps.txt"
}

echo "== start $(date -u +%FT%TZ) in $PWD"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; cat "$OUT/nvidia-smi.txt"
nvidia-smi -q -d CLOCK,POWER,PERFORMANCE > "$OUT/nvidia-smi-q.txt" 2>&1 || true
if ! $PY -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"; then
  echo "!! $PY has no torch: set PYTHON to the interpreter with torch (nothing installed)"
  exit 3
fi

# Missing modules come from the carried wheelhouse, never from an index: into the environment,
# else (externally managed / read-only) into .gpu_site on PYTHONPATH, else unzipped there.
SITE=$PWD/.gpu_site
export PYTHONPATH=$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}
MISSING=$($PY profiler/gpu/env_check.py)
if [ -n "$MISSING" ]; then
  echo "== installing from $WHEELHOUSE: $MISSING"
  $PY -m pip install -q --no-index --find-links "$WHEELHOUSE" $MISSING \
    || $PY -m pip install -q --no-index --find-links "$WHEELHOUSE" --target "$SITE" $MISSING \
    || $PY profiler/gpu/unpack_wheels.py "$WHEELHOUSE" "$SITE"
  MISSING=$($PY profiler/gpu/env_check.py)
  [ -n "$MISSING" ] && echo "!! still missing: $MISSING"
fi
$PY profiler/gpu/fingerprint_json.py "$OUT/fingerprint.json"

if $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  SMALL=""; M8=Llama-3.1-8B; MQ=Qwen2.5-7B; M1=Llama-3.2-1B; M70=Llama-3.1-70B; TP70=8; MAXM=""
else
  echo "== no CUDA: rehearsal with tiny shapes"
  SMALL="--small"; M8=tests/fixtures/profiler/tiny-llama/config.json; MQ=$M8; M1=$M8; M70=$M8
  TP70=2; MAXM="--max-m 4"
fi
OPS=("$PY" -m perfmodel profile --ops --resume --no-progress $MAXM)
SW=("$PY" profiler/gpu/sweeps.py)

step "ops Llama-3.1-8B" 90 "${OPS[@]}" --model "$M8" --out "$OUT/ops_llama-3.1-8b.csv"
step "decode Llama-3.1-8B" 75 "${SW[@]}" "$M8" "$OUT/torch_llama-3.1-8b" decode $SMALL
step "prefill Llama-3.1-8B" 80 "${SW[@]}" "$M8" "$OUT/torch_llama-3.1-8b" prefill $SMALL
step "decode Qwen2.5-7B" 75 "${SW[@]}" "$MQ" "$OUT/torch_qwen2.5-7b" decode $SMALL
step "prefill Qwen2.5-7B" 80 "${SW[@]}" "$MQ" "$OUT/torch_qwen2.5-7b" prefill $SMALL
step "decode Llama-3.2-1B" 50 "${SW[@]}" "$M1" "$OUT/torch_llama-3.2-1b" decode $SMALL
step "prefill Llama-3.2-1B" 30 "${SW[@]}" "$M1" "$OUT/torch_llama-3.2-1b" prefill $SMALL
step "ops Llama-3.2-1B" 45 "${OPS[@]}" --model "$M1" --out "$OUT/ops_llama-3.2-1b.csv"
step "ops Llama-3.1-70B tp$TP70" 45 "${OPS[@]}" --model "$M70" --tp "$TP70" \
  --out "$OUT/ops_llama-3.1-70b_tp$TP70.csv"
step "eager decode Llama-3.1-8B" 30 "${SW[@]}" "$M8" "$OUT/torch_llama-3.1-8b" eager $SMALL
step "ops Qwen2.5-7B" 45 "${OPS[@]}" --model "$MQ" --out "$OUT/ops_qwen2.5-7b.csv"

echo "== done at $(elapsed)s"
ls -la "$OUT"
# The device tool brings back at most 8 files per call (the first H100 run lost its sweep
# CSVs that way): everything also goes into one archive, written last.
# (measure.log is still being written by tee: tar's "file changed" warning is expected)
tar czf "$OUT/measurements.tgz" -C "$OUT" --exclude measurements.tgz --warning=no-file-changed . \
  ; [ -s "$OUT/measurements.tgz" ] && echo "== packed $OUT/measurements.tgz"
