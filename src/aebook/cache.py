"""`train_or_load`: train a model once, then load its weights on every later run."""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import textwrap
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__, devices, draws, models, training
from .devices import computes_as, resolve_device
from .paths import atomic_write, cache_dir, no_cache_warning, warn_once
from .training import History, fit

# 3: code enters keys as its syntax tree without docstrings (2: as source text)
FORMAT = 3
# progress changes how training shows, not what it learns; the device enters the key as
# the arithmetic it does (`arithmetic`), not as the name passed
_NOT_IN_KEY = {"progress", "device"}
# fit's plain defaults: an argument passed with its default value trains the same
# weights as one left out, so both get one key (``penalty=None`` written out or not).
# Only plain values compare, never tensors.
_FIT_DEFAULTS = {
    k: p.default
    for k, p in inspect.signature(fit).parameters.items()
    if p.default is None or isinstance(p.default, (bool, int, float, str))
}
# The package's code that decides what a model learns, whatever is passed to fit: its
# source is in every key.
_WEIGHT_CODE = (training, models, draws)
# Models this session's train_or_load returned: weights digest -> (arguments digest,
# history).
_PRODUCED: dict[str, tuple[str, History]] = {}


def tensor_digest(t: torch.Tensor | None) -> str | None:
    """A short content hash of a tensor (shape, dtype and values)."""
    if t is None:
        return None
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(
        t.numpy().tobytes()
        if t.dtype != torch.bfloat16
        else t.float().numpy().tobytes()
    )
    return h.hexdigest()[:16]


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """One hash of every tensor of a state dict, names included."""
    return hashlib.sha256(
        "".join(f"{k}:{tensor_digest(v)}" for k, v in state_dict.items()).encode()
    ).hexdigest()[:16]


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(
        text if isinstance(text, bytes) else text.encode()
    ).hexdigest()[:16]


def _const_repr(c: Any) -> str:
    """A constant of compiled code, spelled the same in every process (set order varies
    with the hash seed)."""
    if isinstance(c, types.CodeType):
        return _code_object_digest(c)
    if isinstance(c, (frozenset, set)):
        return "{" + ",".join(sorted(_const_repr(x) for x in c)) + "}"
    if isinstance(c, tuple):
        return "(" + ",".join(_const_repr(x) for x in c) + ")"
    return repr(c)


def _without_docstring(code: types.CodeType) -> list[Any]:
    """A function's constants less its docstring, which CPython keeps as the first
    constant."""
    consts = list(code.co_consts)
    flag = getattr(inspect, "CO_HAS_DOCSTRING", None)  # Python 3.14 marks it
    if flag is not None:
        has_doc = bool(code.co_flags & flag)
    else:  # before 3.14 a def without a docstring starts with None; lambdas have none
        has_doc = (
            not code.co_name.startswith("<")
            and bool(consts)
            and isinstance(consts[0], str)
        )
    return consts[1:] if has_doc else consts


def _code_object_digest(code: types.CodeType) -> str:
    """Bytecode, constants (nested functions included, docstrings left out) and names of
    compiled code."""
    return _sha(
        code.co_code
        + repr(
            (
                [_const_repr(c) for c in _without_docstring(code)],
                code.co_names,
                code.co_varnames,
            )
        ).encode()
    )


def source_digest(source: str) -> str:
    """A digest of Python source as code: its syntax tree without docstrings, so that
    editing a comment, a docstring or the layout keeps it, and changing a line of code
    changes it. Source that does not parse alone (a lambda cut out of its line) is
    hashed as text."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return _sha(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            )
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return _sha(ast.dump(tree, include_attributes=False))


def code_digest(func: Any) -> str:
    """A digest of a function's code: its syntax tree where Python can find its source
    (a module, a notebook cell) and its bytecode and constants (which tell apart two
    lambdas on one line). Editing the body changes it; editing its docstring or comments
    does not."""
    func = inspect.unwrap(func)
    try:
        source = source_digest(inspect.getsource(func))
    except (OSError, TypeError):
        source = ""
    return _sha(source + _code_object_digest(func.__code__))


def class_digest(cls: type) -> str:
    """A digest of a class's own methods and of its bases (those outside the standard
    library)."""
    parts = []
    for name, member in sorted(vars(cls).items()):
        member = getattr(member, "__func__", member)  # staticmethod / classmethod
        if isinstance(member, property):
            member = member.fget
        if (
            isinstance(member, types.FunctionType)
            and member.__code__.co_filename != "<string>"
        ):
            # "<string>": made by dataclasses, described by the fields
            parts.append((name, code_digest(member)))
    bases = [
        class_digest(b)
        if b.__module__ not in ("builtins", "abc", "typing")
        and not b.__module__.startswith(("torch", "collections"))
        else b.__qualname__
        for b in cls.__bases__
    ]
    return _sha(repr((cls.__qualname__, parts, bases)))


def _globals_used(func: types.FunctionType) -> dict[str, Any]:
    """The plain numbers and strings a function reads from its module (or notebook):
    ``LAMBDA = 0.1``."""
    names, stack = set(), [func.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    plain = (bool, int, float, str, np.generic)
    return {
        n: describe(func.__globals__[n])
        for n in sorted(names)
        if n in func.__globals__ and isinstance(func.__globals__[n], plain)
    }


def _refuse(obj: Any, why: str) -> TypeError:
    return TypeError(
        f"cannot build a stable cache key from {obj!r} ({why}): pass numbers, strings, "
        "tensors, "
        "a dataclass, a function or a functools.partial of one, or an object whose "
        "attributes "
        f"are such values"
    )


def describe(obj: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """A stable, JSON-able description of a fit argument: its values, and the code it
    runs.

    Functions (module-level, notebook-defined, lambdas, closures) are described by their
    code, the values they close over and the plain numbers they read from their globals;
    bound methods and callable objects also by their instance's state. Anything else is
    refused with a message.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    # np.int64(5), np.float32(1e-3): the number they hold
    if isinstance(obj, np.generic):
        return describe(obj.item())
    if id(obj) in _seen:
        raise _refuse(obj, "it refers to itself")
    seen = _seen | {id(obj)}
    if isinstance(obj, (list, tuple)):
        return [describe(o, seen) for o in obj]
    if isinstance(obj, dict):
        return {
            str(k): describe(v, seen)
            for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(obj, torch.Tensor):
        return tensor_digest(obj)
    if isinstance(obj, np.ndarray):
        return tensor_digest(torch.from_numpy(np.ascontiguousarray(obj)))
    if isinstance(obj, functools.partial):
        return {
            "partial": describe(obj.func, seen),
            "args": describe(obj.args, seen),
            "kwargs": describe(obj.keywords, seen),
        }
    if isinstance(obj, type):
        return {
            "class": f"{obj.__module__}.{obj.__qualname__}",
            "code": class_digest(obj),
        }
    if isinstance(obj, types.MethodType):
        return {
            "method": f"{obj.__func__.__module__}.{obj.__func__.__qualname__}",
            "code": code_digest(obj.__func__),
            "self": describe(obj.__self__, seen),
        }
    if isinstance(obj, types.FunctionType):
        closure = [c.cell_contents for c in (obj.__closure__ or ())]
        return {
            "function": f"{obj.__module__}.{obj.__qualname__}",
            "code": code_digest(obj),
            "closure": describe(closure, seen),
            "defaults": describe(obj.__defaults__, seen),
            "kwdefaults": describe(obj.__kwdefaults__, seen),
            "globals": _globals_used(obj),
        }
    if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)) or type(
        obj
    ).__module__.startswith("torch"):
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if name is None:
            raise _refuse(obj, "a library object without a name")
        return f"{getattr(obj, '__module__', '') or type(obj).__module__}.{name}"
    if dataclasses.is_dataclass(obj):
        return {
            "type": type(obj).__qualname__,
            "code": class_digest(type(obj)),
            **{
                f.name: describe(getattr(obj, f.name), seen)
                for f in dataclasses.fields(obj)
            },
        }
    if callable(obj) or hasattr(obj, "__dict__"):
        try:
            state = vars(obj)
        except TypeError:
            raise _refuse(obj, "its state cannot be read") from None
        return {
            "type": type(obj).__qualname__,
            "code": class_digest(type(obj)),
            "state": describe(state, seen),
        }
    raise _refuse(obj, f"a {type(obj).__name__}")


def _is_default(name: str, value: Any) -> bool:
    if name not in _FIT_DEFAULTS:
        return False
    default = _FIT_DEFAULTS[name]
    return (
        value is default
        if default is None
        else type(value) is type(default) and value == default
    )


def cache_key(
    model: nn.Module, train_x: torch.Tensor, fit_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Everything that decides the trained weights: the package's training code, the
    model's spec, class and initial weights, the data, every fit argument (with the
    code of the hooks) and the device's arithmetic (a GPU's sums round differently, so
    a model trained there is its own entry)."""
    config = (
        model.config.to_dict()
        if hasattr(model, "config") and hasattr(model.config, "to_dict")
        else None
    )
    return {
        "format": FORMAT,
        "aebook": __version__,
        "code": {
            m.__name__: source_digest(inspect.getsource(m)) for m in _weight_code(model)
        },
        "model": describe(type(model)),
        "config": config,
        "init": weights_digest(model.state_dict()),
        "train_x": tensor_digest(train_x),
        "device": arithmetic(resolve_device(fit_kwargs.get("device", "auto"))),
        "fit": describe(
            {
                k: v
                for k, v in fit_kwargs.items()
                if k not in _NOT_IN_KEY and not _is_default(k, v)
            }
        ),
    }


def arithmetic(device: torch.device) -> str:
    """The device as the cache key knows it: ``"cpu"`` for the CPU (and a test device
    that computes as it does), else the device, its GPU and torch's version, since
    another GPU or another CUDA build rounds differently."""
    if computes_as(device) == "cpu":
        return "cpu"
    return ", ".join(devices.describe(device).values())


def _weight_code(model: nn.Module) -> list[types.ModuleType]:
    """`_WEIGHT_CODE`, and the package module the model's class comes from
    (`aebook.sae`, say) if it is another."""
    modules = list(_WEIGHT_CODE)
    own = inspect.getmodule(type(model))
    if (
        own is not None
        and own.__name__.startswith(f"{__package__}.")
        and own not in modules
    ):
        modules.append(own)
    return modules


def train_or_load(
    model: nn.Module,
    train_x: torch.Tensor,
    *,
    name: str = "model",
    directory: str | Path | None = None,
    **fit_kwargs: Any,
) -> tuple[nn.Module, History]:
    """Return ``model`` trained by ``fit(model, train_x, **fit_kwargs)``, loading the
    weights if cached.

    The file name hashes the whole `cache_key`; the key and a digest of the weights are
    stored inside the file and checked on load, so a damaged or mismatched file is
    retrained with a warning, never loaded. A model this function returned, passed again
    with the same arguments (a re-run cell), comes back as it is: no training, no new
    file. An unusable cache folder means one warning and training without the cache:
    nothing computed is lost.
    """
    key = cache_key(model, train_x, fit_kwargs)
    args = _sha(
        json.dumps({k: v for k, v in key.items() if k != "init"}, sort_keys=True)
    )
    produced = _PRODUCED.get(key["init"])
    # these weights are this very call's result
    if produced is not None and produced[0] == args:
        return model.to(
            resolve_device(fit_kwargs.get("device", "auto"))
        ).eval(), produced[1]
    digest = _sha(json.dumps(key, sort_keys=True))[:20]
    try:
        folder = Path(directory) if directory is not None else cache_dir() / "models"
    except OSError as err:
        warn_once(no_cache_warning("trained models", err))
        folder = None
    path = folder / f"{_safe(name)}-{digest}.pt" if folder is not None else None
    history = (
        _try_load(model, path, key) if path is not None and path.exists() else None
    )
    if history is not None:
        model.to(resolve_device(fit_kwargs.get("device", "auto"))).eval()
    else:
        # raises on NaN losses: nothing non-finite is saved
        history = fit(model, train_x, **fit_kwargs)
        if path is not None:
            _save(path, key, model, history)
    _PRODUCED[weights_digest(model.state_dict())] = (args, history)
    return model, history


def _all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(
        bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()
    )


def _save(path: Path, key: dict[str, Any], model: nn.Module, history: History) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not _all_finite(state):
        warnings.warn(
            f"not caching {path.name}: its weights hold NaN or inf",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    try:
        _atomic_save(
            path,
            {
                "key": json.dumps(key, sort_keys=True),
                "weights": weights_digest(state),
                "state_dict": state,
                # with where it was trained: the device, the GPU's name, torch's version
                "history": history.to_dict(),
            },
        )
    # read-only folder, full disk: the trained model is still returned
    except OSError as err:
        warn_once(no_cache_warning("trained models", err))


def _try_load(model: nn.Module, path: Path, key: dict[str, Any]) -> History | None:
    """Load weights into ``model``; None (after a warning) when the file is unusable."""
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if json.loads(blob["key"]) != key:
            raise ValueError("its cache key does not match this model and data")
        state = blob["state_dict"]
        if weights_digest(state) != blob["weights"]:
            raise ValueError(
                "its weights do not match their stored digest (the file is damaged)"
            )
        if not _all_finite(state):
            raise ValueError("its weights hold NaN or inf")
        model.load_state_dict(state)
        h = blob["history"]
        history = History(
            list(h["train_loss"]),
            list(h["val_loss"]),
            float(h["seconds"]),
            {k: list(v) for k, v in h.get("tracked", {}).items()},
            dict(h.get("trained_on", {})),
        )
        if not all(math.isfinite(v) for v in history.train_loss + history.val_loss):
            raise ValueError("its training history holds NaN or inf")
        return history
    # any damage at all means: train again, never crash the chapter
    except Exception as err:
        warnings.warn(
            f"ignoring cached model {path.name} ({type(err).__name__}: {err}); "
            "training it again",
            RuntimeWarning,
            stacklevel=3,
        )
        # a half-applied load must not change what retraining starts from
        model.load_state_dict(initial)
        return None


def _atomic_save(path: Path, obj: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "model"
