"""Build the shipped vLLM operator tables from aiconfigurator-core's measured data.

    pip install 'perfmodel[aiconfigurator]'
    python validation/build_imported_optables.py [--source SYSTEMS_DATA_DIR]

Writes perfmodel/optables/<gpu>__vllm-<version>.csv.gz (gzip-compressed CSV) for A100-80GB SXM, H100 SXM, H200, L40S
and B200, keeping only the rows the shipped models need (the full tables: `perfmodel tables
import`): GEMM bf16 and fp8 at the measured (k, n) grid points around each projection shape
of every shipped model at TP 1, 2, 4, 8 (QKV, O, gate/up, down, LM head), token counts at the
powers of two 1..32768; prefill and decode attention (BF16 KV cache) for the per-GPU head
shapes of those models; the intra-node all-reduce (CUDA graph) at every measured GPU count and
message size. Conversion and provenance: perfmodel/specs/optable_import.py.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from perfmodel.core.optable.price import layer_gemm_shapes
from perfmodel.specs.models import list_models, load_model
from perfmodel.specs.optable_import import (
    Needs,
    import_tables,
    package_data_dir,
    package_version,
    write_table,
)
from perfmodel.specs.optables import OPTABLE_DIR
from validation.build_optable_store import write_copy

# (aiconfigurator system, vLLM version): the newest vLLM data each GPU has (query_versions.yaml
# of aiconfigurator-core 0.12.0: current vllm 0.24.0; a100_sxm 0.14.0)
SHIPPED = (
    ("a100_sxm", "0.14.0"),
    ("h100_sxm", "0.24.0"),
    ("h200_sxm", "0.24.0"),
    ("l40s", "0.24.0"),
    ("b200_sxm", "0.24.0"),
)
TPS = (1, 2, 4, 8)
M_VALUES = frozenset(2**i for i in range(16))


def shipped_needs() -> Needs:
    """GEMM weight shapes and attention head shapes per GPU of every shipped model and TP."""
    shapes, attn = set(), set()
    for name in list_models():
        model = load_model(name)
        for tp in TPS:
            if model.num_heads % tp:
                continue
            shapes |= {(int(k), int(round(n))) for _, k, n in layer_gemm_shapes(model, tp)}
            shapes.add((model.hidden_size, int(math.ceil(model.vocab_size / tp))))
            kv = int(math.ceil(model.num_kv_heads / tp))
            attn.add((model.num_heads // tp, kv, model.head_dim))
    return Needs(frozenset(shapes), frozenset(attn), M_VALUES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="aiconfigurator systems/data folder")
    ap.add_argument("--out", type=Path, default=OPTABLE_DIR)
    args = ap.parse_args()
    data = args.source or package_data_dir()
    needs = shipped_needs()
    for system, version in SHIPPED:
        rows = import_tables(system, "vllm", version, data, needs, package_version(data))
        path = args.out / f"{rows[0]['gpu']}__vllm-{version}.csv.gz"
        write_table(rows, path)
        print(f"{path}: {len(rows)} rows, {path.stat().st_size / 1e6:.2f} MB")
        # its binary copy (specs/optable_store.py), read instead of the CSV while current
        print(f"  {write_copy(path)}")


if __name__ == "__main__":
    main()
