"""Helpers for the chapter notebooks: the setup call every chapter starts with, the
package's real source shown, and numbers glued into prose."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from IPython.display import HTML
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from .claims import Claims
from .data import Data, load_data
from .devices import ENV, describe, use
from .training import set_seed


def setup(
    chapter: str,
    data: str,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> tuple[Data, torch.device, Claims]:
    """A chapter's first call: seed everything (``seed``), choose the chapter's device
    once (``"auto"``: the one ``AEBOOK_DEVICE`` names, else a CUDA GPU where there is
    one, else the CPU; see `devices.resolve_device`), start the chapter's claims on the
    data named ``data`` and load it. Returns (data, device, claim) and prints where it
    runs and on what."""
    device = use(device)  # before the seed: a CUDA device is made repeatable first
    set_seed(seed)
    where = describe(device)
    claim = Claims(chapter, data, where=where)
    loaded = load_data(data)
    gpu = f" ({where['gpu']}; {ENV}=cpu runs it on the CPU)" if "gpu" in where else ""
    print(f"running on {device}{gpu}; {loaded}")
    return loaded, device, claim


def source_html(obj: Any) -> str:
    """The highlighted source of a function, class or module, as self-contained HTML
    (inline styles)."""
    try:
        code = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(
            "show_source needs a function, class or module written in Python, got "
            f"{obj!r}"
        ) from err
    # Inline styles, not CSS classes: the block looks the same in Jupyter, Colab and the
    # built book.
    formatter = HtmlFormatter(noclasses=True, style="friendly", nobackground=False)
    where = (
        f"{obj.__module__}.{obj.__qualname__}"
        if hasattr(obj, "__qualname__")
        else obj.__name__
    )
    return (
        f'<div class="aebook-source"><div style="font-size:85%;color:#555">source of '
        f"<code>{where}</code></div>{highlight(code, PythonLexer(), formatter)}</div>"
    )


def show_source(obj: Any) -> HTML:
    """Display the highlighted source of ``obj`` in a notebook, so chapters show the
    code they run."""
    return HTML(source_html(obj))


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Store ``value`` under ``name`` for the book's prose (``{glue:text}`name```) and
    return it.

    Without myst-nb (on Colab) nothing is stored; the value is still returned, so a cell
    can glue and assert on a number in one line.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    # NumPy and PyTorch scalars print as "np.float64(0.5)" or "tensor(0.5)", which the
    # prose's format specs ({glue:text}`name:.2f`) cannot parse: glue plain numbers.
    _glue(
        name,
        value.item()
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0
        else value,
        display=display,
    )
    return value
