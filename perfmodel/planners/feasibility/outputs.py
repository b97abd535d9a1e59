"""Data safety for files a command writes: never over one of its inputs, the extension the
format needs, written atomically (a temporary file in the same folder, then os.replace, so a
crash or a full disk never leaves a half-written file where a good one was)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from perfmodel.errors import PerfModelError
from perfmodel.specs.inputs import check_writable


def check_output_path(
    out: str | Path,
    option: str,
    extensions: tuple[str, ...],
    inputs: dict[str, str | Path] | None = None,
) -> Path:
    """The one check of a file a command will write, before any work: its folder exists, it
    is not a folder, it can be created or replaced as a regular file (specs.inputs.
    check_writable: no device, no read-only folder), it is none of `inputs` ({option: path};
    compared after resolving links) and its extension is one of `extensions` (lower case,
    with the dot). Raises PerfModelError naming the option."""
    path = Path(out)
    folder = path.expanduser().resolve().parent
    if not folder.is_dir():
        raise PerfModelError(f"{option} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise PerfModelError(f"{option} {path}: is a directory; give a file name")
    check_writable(path, option)
    for in_option, given in (inputs or {}).items():
        if given is not None and _same_file(path, Path(given)):
            raise PerfModelError(
                f"{option} {path} is the same file as {in_option} {given}: it would be "
                "overwritten; write to another file"
            )
    if path.suffix.lower() not in extensions:
        raise PerfModelError(
            f"{option} {path}: expected a {' or '.join(extensions)} file, got "
            f"'{path.suffix or 'no extension'}'"
        )
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path` atomically (temporary file beside it, then os.replace).
    Raises PerfModelError naming the file on an OS error."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp uses 0600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PerfModelError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
