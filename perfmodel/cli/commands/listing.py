"""`perfmodel list models|gpus|profiles`."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.typer_app import JsonOpt, app, console, emit_json
from perfmodel.errors import PerfModelError

MODEL_HEADERS = {
    "params_b": "total B",
    "active_params_b": "active B",
    "kv_bytes_per_token_bf16": "KV B/token (bf16)",
}
MODEL_COLUMNS = (
    "name",
    "params_b",
    "active_params_b",
    "attention",
    "kv_bytes_per_token_bf16",
    "moe",
    "checkpoint",
)


@app.command("list")
def list_command(
    what: Annotated[str, typer.Argument(help="models | gpus | profiles")] = "models",
    json: JsonOpt = False,
) -> None:
    """List the shipped models, GPUs or efficiency profiles."""
    from perfmodel.cli.table import Table

    rows: list[dict]
    what = what.strip().lower()  # enums are case-insensitive everywhere
    if what == "models":
        from perfmodel.specs.models import list_models, load_model, model_aliases

        aliases = model_aliases()
        rows = []
        for name in list_models():
            m = load_model(name)
            rows.append(
                {
                    "name": name,
                    "aliases": sorted(aliases.get(name, []), key=len)[:4],
                    "params_b": round(m.param_count / 1e9, 2),
                    "active_params_b": round(m.active_params / 1e9, 2),
                    "layers": m.num_layers,
                    "hidden": m.hidden_size,
                    "heads": f"{m.num_heads}/{m.num_kv_heads}",
                    "attention": m.attention_kind,
                    "kv_bytes_per_token_bf16": int(m.kv_bytes_per_token(2)),
                    "moe": (
                        f"{m.experts_per_token} of {m.num_experts}"
                        + (" + shared" if m.shared_intermediate_size else "")
                        if m.is_moe
                        else "-"
                    ),
                    "checkpoint": m.checkpoint_format or "-",
                }
            )
    elif what == "gpus":
        from perfmodel.specs.hardware import list_gpus, load_gpu

        rows = []
        for name in list_gpus():
            g = load_gpu(name)
            rows.append(
                {
                    "name": name,
                    "aliases": g.aliases,
                    "bf16_tflops": g.peak_tflops["bf16"],
                    "fp8_tflops": g.peak_tflops.get("fp8"),
                    "hbm_gb": g.hbm_capacity_gb,
                    "hbm_tbps": g.hbm_bandwidth_tbps,
                    "link": f"{g.link_kind} {g.link_bandwidth_gbps:g} GB/s",
                    "price_per_hour": g.price_per_gpu_hour_usd,
                }
            )
    elif what == "profiles":
        from perfmodel.specs.profile import aliases, list_profiles, load_profile

        rows = []
        for name in list_profiles():
            p = load_profile(name)
            rows.append(
                {
                    "name": name,
                    "framework": p.framework,
                    "version": p.framework_version,
                    "gpus": list(p.gpus),
                    "tables": list(profile_tables(p)),
                    "mode": p.mode,
                    "matmul": p.matmul,
                    "attention": p.attention,
                    "memory": p.memory,
                    "comm": p.comm,
                    "description": p.description,
                }
            )
        for alias, target in sorted(aliases().items()):
            rows.append({**next(r for r in rows if r["name"] == target), "name": alias})
            rows[-1]["description"] = (
                f"alias: the newest {rows[-1]['framework']} profile ({target})"
            )
    else:
        raise PerfModelError(f"unknown list '{what}'; use models, gpus or profiles")
    if json:
        emit_json({what: rows})
        return
    table = Table(title=what)
    columns = list(rows[0])
    if what == "models":  # the text table fits a terminal; --json has every field
        columns = [*MODEL_COLUMNS, "aliases"]
    for key in columns:
        table.add_column(MODEL_HEADERS.get(key, key) if what == "models" else key)
    for r in rows:
        cells = [r[k][:2] if (what == "models" and k == "aliases") else r[k] for k in columns]
        table.add_row(*(", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in cells))
    console().print(table)


def profile_tables(profile) -> list[str]:
    """The operator tables behind a profile, each with its provenance (who measured, framework
    version, GPU, license)."""
    if not profile.optable:
        return []
    from perfmodel.specs.optables import load_optable

    t = load_optable(profile.optable)
    prov = t.provenance
    who = prov.get("source_package") or "perfmodel profile --ops"
    license_ = f", {prov['license']}" if prov.get("license") else ""
    return [f"{t.name} ({who}; {t.framework} {t.framework_version}; {t.gpu}{license_})"]
