"""Last-resort install without pip: unzip the wheelhouse's wheels into a directory.

    python profiler/gpu/unpack_wheels.py WHEELHOUSE TARGET

A wheel is a zip of its importable files, so unpacking it onto PYTHONPATH works for the pure
and manylinux wheels measure_h100.sh carries. Wheels of distributions already installed, and
binary wheels built for another Python, are skipped.
"""

import sys
import zipfile
from importlib import metadata
from pathlib import Path

TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


def main(wheelhouse: str, target: str) -> None:
    Path(target).mkdir(parents=True, exist_ok=True)
    for wheel in sorted(Path(wheelhouse).glob("*.whl")):
        name, _version, python_tag = wheel.name.split("-")[:3]
        if python_tag.startswith("cp") and python_tag != TAG:
            continue
        try:
            metadata.version(name)
            continue  # already installed
        except metadata.PackageNotFoundError:
            pass
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
        print(f"unpacked {wheel.name}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
