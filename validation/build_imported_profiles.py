"""Write the profiles that price kernels from the shipped measured operator tables.

    python validation/build_imported_profiles.py   # rewrites the profiles listed below

- vllm-<version>-<gpu> for the vLLM tables imported from aiconfigurator-core
  (validation/build_imported_optables.py): vLLM 0.24.0 on H100 SXM, H200, L40S, B200 and
  vLLM 0.14.0 on A100-80GB SXM. Kernels (GEMM bf16/fp8, attention) and the intra-node
  all-reduce come from the tables. No end-to-end vLLM measurement of these versions is in the
  repository, so nothing is fitted: every other parameter is set, with its reason, and listed
  under `unidentified` (printed by predict).
- torch-cudagraph-h200: our own H200 run (h200__torch-cudagraph, Llama-3.1-8B shapes) with the
  overheads fitted on the H100 run (torch-cudagraph-h100): the H200 end-to-end points were not
  fitted on, but its kernel table is now shipped, so they are no longer held out.
"""

from __future__ import annotations

from dataclasses import replace

from perfmodel.accuracy.calibrate import write_profile_yaml
from perfmodel.paths import PROFILE_DIR
from perfmodel.specs.optables import load_optable
from perfmodel.specs.profile import Profile, load_profile

VLLM_TABLES = {  # profile name -> operator table
    "vllm-0.24.0-h100": "h100-sxm__vllm-0.24.0",
    "vllm-0.24.0-h200": "h200__vllm-0.24.0",
    "vllm-0.24.0-l40s": "l40s__vllm-0.24.0",
    "vllm-0.24.0-b200": "b200__vllm-0.24.0",
    "vllm-0.14.0-a100": "a100-80gb__vllm-0.14.0",
}
NO_E2E = "no end-to-end measurement of this vLLM version in the repository"


def vllm_profile(name: str, table_name: str) -> Profile:
    table = load_optable(table_name)
    ref = load_profile("vllm-0.6.3-h100")  # the vLLM profile fitted on published tables
    torch = load_profile("torch-cudagraph-h100")  # CUDA-graph overheads measured by us
    version = table.framework_version
    unidentified = {
        "efficiency.matmul": f"{NO_E2E}: 1.0, no cap on the measured GEMM times (a long "
        "pass may run below the microbenchmarks' boost clock)",
        "efficiency.attention": f"{NO_E2E}: 1.0, no cap on the measured attention times",
        "efficiency.memory": f"{NO_E2E}: set to the GEMV rate measured on an H100 (0.87 incl. "
        "the vllm-0.6.3-h100 fit); prices only norms and elementwise kernels, absent from "
        "the table",
        "efficiency.comm": f"{NO_E2E}: the table's all-reduce prices TP inside a node; this "
        "prices only the inter-node links (set to 0.8)",
        "overhead.per_layer_us": f"{NO_E2E}: set to torch-cudagraph-h100's fit (our "
        "CUDA-graph decode on an H100), a lower bound for vLLM",
        "overhead.per_step_us": f"{NO_E2E}: set to torch-cudagraph-h100's fit (no scheduler "
        "or sampler in it): a lower bound for vLLM",
        "overhead.per_token_us": f"{NO_E2E}: set to vllm-0.6.3-h100's",
        "overhead.comm_latency_us": f"{NO_E2E}: used only where the all-reduce table does not "
        "apply; set to vllm-0.6.3-h100's",
        "overhead.sd_step_us": f"{NO_E2E}: set to vllm-0.6.3-h100's",
        "overhead.select_us_per_seq": f"{NO_E2E}: set to vllm-0.6.3-h100's",
        "overhead.select_us_per_token": f"{NO_E2E}: set to vllm-0.6.3-h100's",
        "overhead.eager_layer_us": f"{NO_E2E}: 0 (vLLM {version} captures CUDA graphs)",
    }
    return Profile(
        name=name,
        framework="vllm",
        framework_version=version,
        gpus=(table.gpu,),
        mode="additive",
        matmul=1.0,
        attention=1.0,
        memory=ref.memory,
        comm=0.8,
        per_layer_us=torch.per_layer_us,
        per_step_us=torch.per_step_us,
        per_token_us=ref.per_token_us,
        comm_latency_us=ref.comm_latency_us,
        sd_step_us=ref.sd_step_us,
        select_us_per_seq=ref.select_us_per_seq,
        select_us_per_token=ref.select_us_per_token,
        kernel_floor_us=ref.kernel_floor_us,
        memory_utilization=0.9,
        optable=table_name,
        unidentified=unidentified,
        description=(
            f"vLLM {version} on {table.provenance.get('gpu_name', table.gpu)}: kernels and the "
            f"intra-node all-reduce from operator table {table_name} (measured by NVIDIA, "
            f"{table.provenance.get('source_package', '')}, {table.provenance.get('license', '')}"
            "); overheads set, not fitted (see unidentified)"
        ),
        provenance={
            "method": "hand-set (validation/build_imported_profiles.py): no end-to-end data of "
            "this version to fit on",
            "optable": table_name,
            "optable_source": table.provenance.get("source_package", ""),
            "license": table.provenance.get("license", ""),
        },
    )


def torch_h200_profile() -> Profile:
    h100 = load_profile("torch-cudagraph-h100")
    unidentified = dict(h100.unidentified)
    for key in (
        "efficiency.matmul",
        "overhead.per_layer_us",
        "overhead.per_step_us",
        "overhead.eager_layer_us",
    ):
        unidentified[key] = (
            "fitted on the H100 run (torch-cudagraph-h100) and reused: the H200 end-to-end "
            "points are not fitted on"
        )
    return replace(
        h100,
        name="torch-cudagraph-h200",
        gpus=("h200",),
        optable="h200__torch-cudagraph",
        unidentified=unidentified,
        description=(
            "plain PyTorch 2.11 + CUDA-graph decode / eager prefill, SDPA, BF16, TP1, one H200: "
            "operator table h200__torch-cudagraph (perfmodel profile --ops, Llama-3.1-8B shapes,"
            " validation/measurements/profiler_h200_2026-11-26) + overheads of "
            "torch-cudagraph-h100 (not refitted)"
        ),
        provenance={
            "method": "torch-cudagraph-h100 with the H200's own operator table "
            "(validation/build_imported_profiles.py); nothing fitted on H200 data",
            "optable": "h200__torch-cudagraph",
        },
    )


def main() -> None:
    profiles = [vllm_profile(n, t) for n, t in VLLM_TABLES.items()] + [torch_h200_profile()]
    for p in profiles:
        path = PROFILE_DIR / f"{p.name}.yaml"
        write_profile_yaml(p, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
