"""`perfmodel tables import`: NVIDIA aiconfigurator-core's measured tables -> operator tables.

Parse, call specs/optable_import.py, report; no conversion logic here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perfmodel.cli.typer_app import JsonOpt, app, emit_json
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural

tables_app = typer.Typer(
    help="Operator tables: import public measured kernel tables.", no_args_is_help=True
)
app.add_typer(tables_app, name="tables")


@tables_app.command("import")
def import_command(
    system: Annotated[
        str,
        typer.Option(
            "--system",
            help="aiconfigurator system (a100_sxm, h100_sxm, h200_sxm, l40s, b200_sxm) or GPU "
            "(a100, h100, h200, l40s, b200).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the table into.")],
    framework: Annotated[str, typer.Option("--framework", help="vllm | sglang | trtllm")] = "vllm",
    version: Annotated[
        str | None,
        typer.Option("--version", help="Framework version (default: the newest with data)."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="aiconfigurator systems/data folder (default: the installed aiconfigurator-core).",
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Convert one GPU's measured GEMM, attention and all-reduce tables of one framework
    version into a perfmodel operator table, with provenance and license on every row."""
    from perfmodel.specs.optable_import import (
        import_tables,
        package_data_dir,
        resolve_system,
        versions,
        write_table,
    )

    if out.exists() and not out.is_dir():
        raise PerfModelError(f"--out {out}: exists and is not a folder")
    if source is not None and not source.is_dir():
        raise PerfModelError(f"--source {source}: not a folder (aiconfigurator systems/data)")
    system = resolve_system(system)
    data = source if source is not None else package_data_dir()
    if version is None:
        known = versions(data, system, "gemm", framework)
        if not known:
            raise PerfModelError(f"--framework {framework}: no data for {system} in {data}")
        version = known[-1]
    rows = import_tables(system, framework, version, data)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{rows[0]['gpu']}__{framework}-{version}.csv"
    write_table(rows, path)
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r['op']} {r['dtype']}"] = counts.get(f"{r['op']} {r['dtype']}", 0) + 1
    result = {"table": str(path), "rows": len(rows), "by_op": counts, **provenance(rows[0])}
    if json:
        emit_json(result)
        return
    typer.echo(
        f"wrote {path}: {plural(len(rows), 'row')} "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())})"
    )
    typer.echo(f"  from {result['source_package']} ({result['license']}), {framework} {version}")


def provenance(row: dict) -> dict:
    keys = ("gpu", "gpu_name", "framework", "framework_version", "license", "source_package")
    return {k: row[k] for k in keys}
