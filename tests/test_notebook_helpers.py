import pytest

from aebook.notebook import glue, setup, show_source, source_html
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


def test_setup_seeds_loads_the_data_and_starts_the_claims(capsys):
    import torch

    from aebook.claims import load_records

    torch.manual_seed(123)
    data, device, claim = setup("01_overview", "mnist5k", device="cpu")
    first = torch.rand(3)
    setup("01_overview", "mnist5k", device="cpu")
    assert torch.equal(torch.rand(3), first)  # seeded the same way each time
    assert device == torch.device("cpu") and data.name == "mnist5k"
    assert data.train_x.shape == (4000, 784)
    assert claim.strict and claim.chapter == "01_overview"
    claim("a finding", True)
    assert load_records()["mnist5k"]["01_overview"][0]["statement"] == "a finding"
    assert "running on cpu; Data('mnist5k'" in capsys.readouterr().out
