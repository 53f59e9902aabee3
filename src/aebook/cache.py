"""`train_or_load`: train a model once, then load its weights on every later run."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .paths import atomic_write, cache_dir
from .training import History, fit, resolve_device

FORMAT = 1
_NOT_IN_KEY = {"progress", "device"}  # they change how training runs, not what it learns


def tensor_digest(t: torch.Tensor | None) -> str | None:
    """A short content hash of a tensor (shape, dtype and values)."""
    if t is None:
        return None
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def describe(obj: Any) -> Any:
    """A stable, JSON-able description of a fit argument (numbers, dataclasses, functions, partials)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [describe(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in sorted(obj.items())}
    if isinstance(obj, torch.Tensor):
        return tensor_digest(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__qualname__,
                **{f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, functools.partial):
        return {"partial": describe(obj.func), "args": describe(obj.args), "kwargs": describe(obj.keywords)}
    if callable(obj) and hasattr(obj, "__qualname__") and "<lambda>" not in obj.__qualname__ \
            and "<locals>" not in obj.__qualname__:
        return f"{obj.__module__}.{obj.__qualname__}"
    raise TypeError(f"cannot build a stable cache key from {obj!r}: pass a dataclass, a module-level "
                    f"function or a functools.partial of one (lambdas and closures have no stable name)")


def cache_key(model: nn.Module, train_x: torch.Tensor, fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides the trained weights: package version, model spec and initial weights, data, fit args."""
    config = model.config.to_dict() if hasattr(model, "config") else None
    init = hashlib.sha256("".join(f"{k}:{tensor_digest(v)}" for k, v in model.state_dict().items()).encode())
    return {
        "format": FORMAT,
        "aebook": __version__,
        "model": type(model).__qualname__,
        "config": config,
        "init": init.hexdigest()[:16],
        "train_x": tensor_digest(train_x),
        "fit": describe({k: v for k, v in fit_kwargs.items() if k not in _NOT_IN_KEY}),
    }


def train_or_load(model: nn.Module, train_x: torch.Tensor, *, name: str = "model",
                  directory: str | Path | None = None, **fit_kwargs: Any) -> tuple[nn.Module, History]:
    """Return ``model`` trained by ``fit(model, train_x, **fit_kwargs)``, loading the weights if cached.

    The file name hashes the whole `cache_key`; the key is also stored inside the file and
    compared on load. A corrupted or mismatched file is retrained with a warning. Writes
    are atomic, so a crash mid-save never leaves a half-written file behind.
    """
    key = cache_key(model, train_x, fit_kwargs)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(directory) if directory is not None else cache_dir() / "models"
    path = folder / f"{_safe(name)}-{digest}.pt"
    if path.exists():
        history = _try_load(model, path, key)
        if history is not None:
            return model.to(resolve_device(fit_kwargs.get("device", "auto"))).eval(), history
    history = fit(model, train_x, **fit_kwargs)
    _atomic_save(path, {
        "key": json.dumps(key, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.to_dict(),
    })
    return model, history


def _try_load(model: nn.Module, path: Path, key: dict[str, Any]) -> History | None:
    """Load weights into ``model``; None (after a warning) when the file is unusable."""
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if json.loads(blob["key"]) != key:
            raise ValueError("its cache key does not match this model and data")
        model.load_state_dict(blob["state_dict"])
        h = blob["history"]
        return History(list(h["train_loss"]), list(h["val_loss"]), float(h["seconds"]))
    except Exception as err:  # any damage at all means: train again, never crash the chapter
        warnings.warn(f"ignoring cached model {path.name} ({type(err).__name__}: {err}); training it again",
                      RuntimeWarning, stacklevel=3)
        model.load_state_dict(initial)  # a half-applied load must not change what retraining starts from
        return None


def _atomic_save(path: Path, obj: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "model"
