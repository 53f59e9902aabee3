"""Where the book keeps what it computes: one cache folder, movable by `AEBOOK_CACHE`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

ENV_VAR = "AEBOOK_CACHE"


def repo_root() -> Path | None:
    """The repository this package was installed from in editable mode, or None (e.g. on Colab)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "_config.yml").is_file() else None


def cache_dir() -> Path:
    """`$AEBOOK_CACHE`, else `<repo>/.cache` (gitignored), else `~/.cache/aebook`. Created on demand."""
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
    elif (root := repo_root()) is not None:
        path = root / ".cache"
    else:
        path = Path.home() / ".cache" / "aebook"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``write(f)`` into a temporary file beside it, then rename it into place.

    The rename is atomic on POSIX: a reader sees the old file or the whole new one, and a crash
    mid-write (or a reader pressing stop) leaves neither a half-written file nor a stray temporary.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
