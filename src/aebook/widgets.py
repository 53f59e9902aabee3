"""Sliders over precomputed panels that work live, on Colab and in the static book.

Every panel is computed once, as a compressed PNG, before the slider exists, so moving
the slider never trains or recomputes anything. With ipywidgets 8 the panels sit in a
``Stack`` whose ``selected_index`` is linked to the slider in the browser (``jslink``):
that needs no kernel, so it also works in the built HTML book, where myst-nb embeds the
executed notebook's widget state. Colab ships ipywidgets 7.7.1, which has no ``Stack``;
there a kernel callback swaps the shown panel instead.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as compressed PNG bytes (and the figure closed, so the notebook does not
    show it twice)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None}
    )
    plt.close(fig)
    return buf.getvalue()


def image_png(rgb: np.ndarray, colors: int | None = None) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes: for panels composed in NumPy, far faster
    than a figure each.

    ``colors`` (2 to 256) stores it with a palette of that many colours, a third or less
    of the bytes for plots and grey digits, which keeps a page of hundreds of panels
    small.
    """
    from PIL import Image

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}"
        )
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(
            f"colors must be between 2 and 256 (a PNG palette), got {colors}"
        )
    image = Image.fromarray(rgb)
    if colors is not None:
        image = image.quantize(colors=colors, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="png", optimize=True)
    return buf.getvalue()


def has_stack() -> bool:
    """True with ipywidgets 8 (browser-side switching); False with 7.x, as on Colab."""
    return hasattr(widgets, "Stack")


def panel(png: bytes, caption: str, alt: str | None = None) -> widgets.VBox:
    """One slider position: a caption line above a PNG image, with ``alt`` text for
    readers who do not see it (the caption when not given). The image is an HTML <img>
    with the PNG inline, because an ipywidgets ``Image`` has no alt text."""
    text = widgets.HTML(f'<div class="aebook-caption">{html.escape(caption)}</div>')
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    image = widgets.HTML(
        f'<img class="aebook-panel" src="{src}" alt="{html.escape(alt or caption)}">'
    )
    return widgets.VBox([text, image])


def _switcher(
    children: Sequence[widgets.Widget], control: widgets.Widget
) -> widgets.Widget:
    """Show ``children[control.index]``: a jslinked Stack on ipywidgets 8, a swapped Box
    on 7.x."""
    if has_stack():
        stack = widgets.Stack(list(children), selected_index=control.index)
        widgets.jslink((control, "index"), (stack, "selected_index"))
        return stack
    box = widgets.Box([children[control.index]])

    def show(change: dict) -> None:
        box.children = [children[change["new"]]]

    control.observe(show, names="index")
    return box


def _check(panels: Sequence[widgets.Widget], labels: Sequence[str]) -> None:
    if len(panels) != len(labels) or not labels:
        raise ValueError(
            f"need one panel per label, and at least one; got {len(panels)} panels "
            f"for {len(labels)} labels"
        )


def _slider(labels: Sequence[str], description: str) -> widgets.SelectionSlider:
    return widgets.SelectionSlider(
        options=list(labels),
        value=labels[0],
        description=description,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="420px"),
    )


def panel_slider(
    panels: Sequence[widgets.Widget], labels: Sequence[str], description: str
) -> widgets.VBox:
    """A slider over ``labels``; position i shows ``panels[i]``."""
    _check(panels, labels)
    slider = _slider(labels, description)
    return widgets.VBox([slider, _switcher(panels, slider)])


def _nested(
    rows: Sequence[Sequence[widgets.Widget]],
    inner: widgets.Widget,
    outer: widgets.Widget,
) -> widgets.Widget:
    """A switcher of switchers: ``inner`` picks the panel within each row, ``outer`` the
    row. Both links live in the browser, so the static page needs no kernel."""
    return _switcher([_switcher(row, inner) for row in rows], outer)


def panel_slider_grid(
    panels: Mapping[str, Sequence[widgets.Widget]],
    labels: Sequence[str],
    description: str,
    choice_description: str,
) -> widgets.VBox:
    """A slider over ``labels`` and buttons over the keys of ``panels``: (key, i) shows
    ``panels[key][i]``.

    One slider drives one switcher per key; the buttons pick which switcher is shown.
    """
    if not panels:
        raise ValueError("need at least one choice of panels")
    for p in panels.values():
        _check(p, labels)
    slider = _slider(labels, description)
    choice = widgets.ToggleButtons(
        options=list(panels),
        description=choice_description,
        style={"description_width": "initial"},
    )
    return widgets.VBox(
        [choice, slider, _nested(list(panels.values()), slider, choice)]
    )


def panel_slider_2d(
    panels: Sequence[Sequence[widgets.Widget]],
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    x_description: str,
    y_description: str,
) -> widgets.VBox:
    """Two sliders, x over ``x_labels`` and y over ``y_labels``: (x_labels[i],
    y_labels[j]) shows ``panels[j][i]``.

    The x slider drives one switcher per row; the y slider picks which row's switcher is
    shown.
    """
    if len(panels) != len(y_labels) or not y_labels:
        raise ValueError(
            f"need one row of panels per y label, and at least one; got {len(panels)} "
            "rows "
            f"for {len(y_labels)} labels"
        )
    for row in panels:
        _check(row, x_labels)
    x, y = _slider(x_labels, x_description), _slider(y_labels, y_description)
    return widgets.VBox([x, y, _nested(panels, x, y)])
