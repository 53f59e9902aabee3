"""Where the book keeps what it computes: one cache folder, moved by `AEBOOK_CACHE`."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ENV_VAR = "AEBOOK_CACHE"
# a temporary file this old belongs to a writer that was killed, not to one still
# writing
STALE_TEMP_S = 3600
# cache problems already reported: one warning each, not one per model
_warned: set[str] = set()


def repo_root() -> Path | None:
    """The repository this package was installed from in editable mode, or None (e.g. on
    Colab)."""
    root = Path(__file__).resolve().parents[2]
    return (
        root
        if (root / "pyproject.toml").is_file() and (root / "_config.yml").is_file()
        else None
    )


def cache_dir() -> Path:
    """`$AEBOOK_CACHE`, else `<repo>/.cache` (gitignored), else `~/.cache/aebook`.
    Created on demand.

    Raises OSError (with a message that says what to do) when the folder cannot be
    created.
    """
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
    elif (root := repo_root()) is not None:
        path = root / ".cache"
    else:
        path = Path.home() / ".cache" / "aebook"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(
            f"the cache folder {path} is a file: point {ENV_VAR} at a folder"
        ) from None
    return path


def warn_once(message: str) -> None:
    """A RuntimeWarning about the cache, shown once per session (a chapter trains dozens
    of models)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def no_cache_warning(what: str, err: BaseException) -> str:
    return (
        f"cannot use the cache for {what} ({type(err).__name__}: {err}); the work goes "
        "on without "
        f"caching. Set {ENV_VAR} to a folder you can write to, to keep results between "
        "runs."
    )


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``write(f)`` into a temporary file beside it, then rename it
    into place.

    The data is flushed to disk (fsync) before the rename, and the rename is atomic on
    POSIX: a reader sees the old file or the whole new one, even after a crash or a
    power cut. A temporary left by a writer that was killed (SIGKILL, power cut) is
    removed by a later write. The file is readable by others (0644), like any file the
    reader saves.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a cache file is no secret
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _remove_stale_temporaries(path: Path) -> None:
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            pass  # another process removed or renamed it first


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX needs the folder synced too)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
