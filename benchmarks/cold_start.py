"""Cold start of `perfmodel recommend --model 405b --bsz 64` as a ratio to a bare numpy import.

    PYTHONPATH=. python benchmarks/cold_start.py [--runs 15] [--importtime 25]

Each run starts fresh processes, alternating the two commands so that a load change on the
machine hits both alike; prints the median wall time of each and their ratio (target <= 2.5,
issue 21), and the same for CPU time (user + system of the child), which a machine shared
with other work disturbs less. The ratio, not the seconds, is the figure to compare.
--importtime N also prints the N slowest imports (cumulative, `python -X importtime`) of one
recommend run, the heavy packages it imported (numpy.ma among them: a plain np.unique
imports it) and the perfmodel modules it imported.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 2.5
RECOMMEND_ARGS = ["recommend", "--model", "405b", "--bsz", "64"]
NUMPY = [sys.executable, "-c", "import numpy"]


def perfmodel_script() -> str:
    beside = Path(sys.executable).parent / "perfmodel"
    found = str(beside) if beside.exists() else shutil.which("perfmodel")
    if not found:
        sys.exit("error: the perfmodel console script is not installed (pip install -e .)")
    return found


def compile_bytecode() -> None:
    """Write perfmodel's .pyc files first, as an installed package has them: a process run
    with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every start."""
    code = "import compileall, pathlib, perfmodel; compileall.compile_dir(pathlib.Path(perfmodel.__file__).parent, quiet=1)"
    subprocess.run([sys.executable, "-c", code], check=True)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system) of one fresh process running cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slowest_imports(n: int) -> None:
    """Print the n largest cumulative import times of one recommend run (-X importtime)."""
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *RECOMMEND_ARGS],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_part, cumulative_us, name = line.split("|")
        rows.append((int(cumulative_us), int(self_part.split(":")[1]), name.rstrip()))
    total = sum(c for c, _, name in rows if not name.startswith(" " * 2))  # top level
    # `import a.b.c` whose parent package a.b imports c itself reports c twice (the second
    # line: the lookup that finds it loaded); count each module once
    count = len({name.strip() for _, _, name in rows})
    print(f"\n-X importtime of one recommend run: {count} modules, {total / 1e3:.0f} ms")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cumulative, own, name in sorted(rows, reverse=True)[:n]:
        print(f"{cumulative / 1e3:14.1f} {own / 1e3:8.1f}  {name}")
    # numpy.ma: numpy 2.x's plain np.unique(x) imports it (~15 ms) on its first call
    heavy = ("pandas", "scipy", "plotly", "pydantic", "rich", "yaml", "streamlit", "torch")
    names = {name.strip() for _, _, name in rows}
    loaded = {name.split(".")[0] for name in names} | ({"numpy.ma"} & names)
    heavy_loaded = [h for h in (*heavy, "numpy.ma") if h in loaded]
    print("heavy packages imported:", ", ".join(heavy_loaded) or "none")
    ours = sorted(name for name in names if name.startswith("perfmodel"))
    print(f"perfmodel modules imported ({len(ours)}):", ", ".join(ours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", type=int, default=0, metavar="N")
    args = parser.parse_args()
    recommend = [perfmodel_script(), *RECOMMEND_ARGS]
    compile_bytecode()
    timed(recommend), timed(NUMPY)  # warm the file cache, not counted
    numpy_runs, recommend_runs = [], []
    for _ in range(args.runs):
        numpy_runs.append(timed(NUMPY))
        recommend_runs.append(timed(recommend))
    print(f"medians over {args.runs} alternated runs      wall ms    CPU ms")
    medians = []
    for label, runs in (
        ("python -c 'import numpy'", numpy_runs),
        ("perfmodel " + " ".join(RECOMMEND_ARGS), recommend_runs),
    ):
        wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 1))
        medians.append((wall, cpu))
        print(f"{label:42} {wall * 1e3:7.0f} {cpu * 1e3:9.0f}")
    wall_ratio = medians[1][0] / medians[0][0]
    cpu_ratio = medians[1][1] / medians[0][1]
    verdict = "within" if wall_ratio <= TARGET_RATIO else "ABOVE"
    print(f"ratio (wall) {wall_ratio:.2f} ({verdict} the {TARGET_RATIO}x target)")
    print(f"ratio (CPU time, steadier on a loaded machine) {cpu_ratio:.2f}")
    if args.importtime:
        slowest_imports(args.importtime)


if __name__ == "__main__":
    main()
