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
