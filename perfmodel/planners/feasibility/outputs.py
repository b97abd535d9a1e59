"""Data safety for files a command writes: never over one of its inputs, the extension the
format needs, written atomically (a temporary file in the same folder, then os.replace, so a
crash or a full disk never leaves a half-written file where a good one was)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from perfmodel.errors import PerfModelError


def check_output_path(
    out: str | Path,
    option: str,
    extensions: tuple[str, ...],
    inputs: dict[str, str | Path | None] | None = None,
    *,
    make_folders: bool = False,
) -> Path:
    """The output path, checked before any work; the one check for every file a command
    writes. In this order, so the first line says what is really wrong:

    1. not a directory (an existing folder, or a name ending in a path separator);
    2. not an existing device or other special file (/dev/full, a FIFO);
    3. none of `inputs` ({option: path}; compared after resolving links);
    4. its extension is one of `extensions` (lower case, with the dot);
    5. its folder exists (with `make_folders`, the command creates it: the nearest existing
       ancestor must then be a folder);
    6. the folder takes a new file (probed with a temporary file, as root bypasses permission
       bits) and an existing file is writable.

    Raises PerfModelError naming `option`."""
    raw = str(out)
    path = Path(out)
    wanted = " or ".join(extensions)
    if path.is_dir() or raw.endswith(("/", os.sep)):
        what = "is a directory" if path.is_dir() else "ends in a separator: it names a directory"
        raise PerfModelError(f"{option} {raw} {what}; give a file name ending in {wanted}")
    if path.exists() and not path.is_file():
        raise PerfModelError(
            f"{option} {path}: not a regular file (a device or special file); give a file path"
        )
    for in_option, given in (inputs or {}).items():
        if given is not None and _same_file(path, Path(given)):
            raise PerfModelError(
                f"{option} {path} is the same file as {in_option} {given}: it would be "
                "overwritten; write to another file"
            )
    if path.suffix.lower() not in extensions:
        raise PerfModelError(
            f"{option} {path}: expected a {wanted} file, got '{path.suffix or 'no extension'}'"
        )
    folder = path.expanduser().resolve().parent
    if not folder.is_dir():
        existing = next((a for a in folder.parents if a.exists()), None)
        if not make_folders or existing is None or not existing.is_dir():
            below = f" ({existing} is not a folder)" if existing and existing.is_file() else ""
            raise PerfModelError(f"{option} {path}: folder {path.parent} does not exist{below}")
        folder = existing
    _check_writable(path, folder, option)
    return path


def _check_writable(path: Path, folder: Path, option: str) -> None:
    """`folder` takes a new file (a read-only mount or /proc does not) and an existing `path`
    is writable."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".perfmodel-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PerfModelError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror})"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise PerfModelError(f"{option} {path}: the file is not writable")


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
