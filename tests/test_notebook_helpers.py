import pytest

from aebook.notebook import glue, show_source, source_html
from aebook.training import fit


def test_show_source_shows_the_real_code():
    html = source_html(fit)
    assert "aebook.training.fit" in html
    assert "def</span>" in html and "style=" in html  # highlighted with inline styles
    assert show_source(fit).data == html


def test_show_source_rejects_builtins():
    with pytest.raises(TypeError, match="show_source needs"):
        source_html(len)


def test_glue_returns_its_value():
    assert glue("x", 0.25) == 0.25


def test_glue_stores_plain_numbers(monkeypatch):
    import myst_nb
    import numpy as np
    import torch

    stored = {}
    monkeypatch.setattr(
        myst_nb,
        "glue",
        lambda name, value, display=False: stored.__setitem__(name, value),
    )
    (
        glue("a", np.float64(0.5)),
        glue("b", torch.tensor(2.0)),
        glue("c", "text"),
        glue("d", [1, 2]),
    )
    assert stored == {"a": 0.5, "b": 2.0, "c": "text", "d": [1, 2]}
    assert type(stored["a"]) is float and type(stored["b"]) is float
