"""Helpers for the chapter notebooks: show the package's real source, and glue numbers
into prose."""

from __future__ import annotations

import inspect
from typing import Any

from IPython.display import HTML
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer


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
