"""Figures: image grids, reconstruction rows, loss curves and the architecture diagram.

Nothing here changes matplotlib's global style; every function draws on the axes it is
given or makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

from .data import IMAGE_SHAPE
from .training import History


def image_grid(x: torch.Tensor, nrow: int = 10, padding: int = 2) -> np.ndarray:
    """(N, 784) images in [0, 1] -> one (H, W) array, ``nrow`` images per row,
    ``padding`` white pixels around each (the layout of torchvision's make_grid, without
    importing torchvision: 1.7 s)."""
    if x.ndim != 2 or x.shape[1] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        raise ValueError(
            f"expected (N, {IMAGE_SHAPE[0] * IMAGE_SHAPE[1]}) flattened images, got "
            f"{tuple(x.shape)}"
        )
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1 or padding < 0:
        raise ValueError(
            f"need a whole number nrow >= 1 and padding >= 0, got nrow={nrow!r}, "
            f"padding={padding!r}"
        )
    imgs = x.detach().cpu().float().clamp(0, 1).reshape(-1, *IMAGE_SHAPE).numpy()
    (h, w), cols = IMAGE_SHAPE, min(nrow, len(imgs))
    rows = -(-len(imgs) // nrow)
    grid = np.ones(
        (rows * (h + padding) + padding, cols * (w + padding) + padding),
        dtype=np.float32,
    )
    for i, img in enumerate(imgs):
        top, left = (
            padding + (i // nrow) * (h + padding),
            padding + (i % nrow) * (w + padding),
        )
        grid[top : top + h, left : left + w] = img
    return grid


def show_images(
    x: torch.Tensor, nrow: int = 10, title: str | None = None, ax: Axes | None = None
) -> Axes:
    """Draw (N, 784) images as a grid, white background, no ticks."""
    ax = (
        ax
        if ax is not None
        else plt.subplots(figsize=(nrow * 0.6, 0.6 * -(-len(x) // nrow) + 0.3))[1]
    )
    ax.imshow(
        image_grid(x, nrow), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return ax


def show_rows(rows: Mapping[str, torch.Tensor], n: int = 10) -> Figure:
    """One labelled row of ``n`` images per entry, e.g. {"original": x,
    "reconstruction": r}."""
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(n * 0.65, 0.8 * len(rows)), squeeze=False
    )
    for ax, (label, x) in zip(axes[:, 0], rows.items()):
        show_images(x[:n], nrow=n, ax=ax)
        ax.set_axis_on()
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout()
    return fig


def plot_losses(
    histories: History | Mapping[str, History],
    ax: Axes | None = None,
    ylabel: str = "loss",
) -> Axes:
    """Training (solid) and validation (dashed) loss per epoch, one colour per run."""
    runs = {"": histories} if isinstance(histories, History) else dict(histories)
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 3.2))[1]
    for i, (name, h) in enumerate(runs.items()):
        color = f"C{i}"
        prefix = f"{name}: " if name else ""
        epochs = np.arange(1, len(h.train_loss) + 1)
        ax.plot(epochs, h.train_loss, color=color, label=f"{prefix}train")
        if h.val_loss:
            ax.plot(
                epochs, h.val_loss, color=color, linestyle="--", label=f"{prefix}test"
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def draw_architecture(path: str | Path | None = None) -> Figure:
    """The autoencoder diagram: input x, encoder f, code h, decoder g, reconstruction r.
    Saved as PNG if ``path``."""
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.set_axis_off()
    blue, orange, green = "#4c72b0", "#dd8452", "#55a868"
    # Bars for the layers: tall for x and r (784 numbers), short for the code h (k
    # numbers).
    for x0, height, color, label in [
        (0.4, 3.2, blue, "input $x$\n784 pixels"),
        (4.65, 1.0, orange, "code $h$\n$k$ numbers"),
        (8.9, 3.2, green, "output $r$\n784 pixels"),
    ]:
        ax.add_patch(
            Rectangle((x0, 2 - height / 2), 0.7, height, color=color, alpha=0.85)
        )
        ax.text(
            x0 + 0.35, 2 - height / 2 - 0.15, label, ha="center", va="top", fontsize=9
        )
    # Trapezoids for the networks that narrow and widen the data.
    ax.add_patch(
        Polygon(
            [(1.4, 0.5), (4.35, 1.5), (4.35, 2.5), (1.4, 3.5)], color=blue, alpha=0.25
        )
    )
    ax.add_patch(
        Polygon(
            [(5.65, 1.5), (8.6, 0.5), (8.6, 3.5), (5.65, 2.5)], color=green, alpha=0.25
        )
    )
    ax.text(2.9, 2, "encoder\n$h = f(x)$", ha="center", va="center", fontsize=11)
    ax.text(7.1, 2, "decoder\n$r = g(h)$", ha="center", va="center", fontsize=11)
    for a, b in [((1.15, 3.8), (4.6, 3.8)), ((5.4, 3.8), (8.85, 3.8))]:
        ax.add_patch(
            FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color="0.3")
        )
    ax.text(
        5,
        0.1,
        "trained to make $r$ close to $x$: minimise $L(x, g(f(x)))$",
        ha="center",
        va="bottom",
        fontsize=10,
        color="0.25",
    )
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    return fig
