"""Where the book keeps what it computes: one cache folder, movable by `AEBOOK_CACHE`."""

from __future__ import annotations

import os
from pathlib import Path

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
