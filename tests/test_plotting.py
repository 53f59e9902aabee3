from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from aebook import plotting
from aebook.training import History


def test_image_grid_layout():
    grid = plotting.image_grid(torch.rand(20, 784), nrow=10, padding=2)
    assert grid.shape == (2 * 28 + 3 * 2, 10 * 28 + 11 * 2)
    assert grid.min() >= 0 and grid.max() <= 1


def test_image_grid_rejects_unflattened_images():
    with pytest.raises(ValueError, match="flattened"):
        plotting.image_grid(torch.rand(4, 28, 28))


def test_show_images_and_rows():
    ax = plotting.show_images(torch.rand(6, 784), nrow=3, title="t")
    assert ax.get_title(loc="left") == "t"
    fig = plotting.show_rows({"a": torch.rand(5, 784), "b": torch.rand(5, 784)}, n=5)
    assert [ax.get_ylabel() for ax in fig.axes] == ["a", "b"]


def test_plot_losses_draws_train_and_test():
    ax = plotting.plot_losses(
        {"x": History([1.0, 0.5], [1.1, 0.6]), "y": History([2.0, 1.0])}
    )
    assert [line.get_label() for line in ax.get_lines()] == [
        "x: train",
        "x: test",
        "y: train",
    ]


def test_draw_architecture_writes_a_png(tmp_path):
    fig = plotting.draw_architecture(tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("encoder" in t.get_text() for t in fig.axes[0].texts)


def test_figure_script_writes_into_images(tmp_path):
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "draw_figures", root / "scripts" / "draw_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (path,) = module.main(tmp_path)
    assert path.name == "autoencoder_architecture.png" and path.stat().st_size > 10_000
    assert (root / "images" / path.name).is_file()  # the committed copy the book shows


def test_nothing_changes_global_style():
    before = dict(plt.rcParams)
    plotting.show_images(torch.rand(2, 784))
    assert dict(plt.rcParams) == before


def test_image_grid_places_each_image_in_its_cell():
    x = torch.rand(7, 784)
    grid = plotting.image_grid(x, nrow=3, padding=1)
    assert grid.shape == (3 * 29 + 1, 3 * 29 + 1)
    assert np.array_equal(
        grid[1 + 29 : 1 + 29 + 28, 1 + 58 : 1 + 58 + 28], x[5].reshape(28, 28).numpy()
    )
    # the padding and the empty cells are white
    assert (grid[:, 0] == 1).all() and (grid[-29:, 1 + 29 :] == 1).all()
