import ipywidgets
import matplotlib.pyplot as plt
import pytest

from aebook import widgets as aw


def _panels(n, tag="p"):
    return [aw.panel(b"\x89PNG fake", f"{tag} {i}") for i in range(n)]


def _caption(p):
    return p.children[0].value


def test_figure_png_is_a_closed_png():
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = aw.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and not plt.fignum_exists(fig.number)


def test_panel_escapes_its_caption_and_gives_its_image_alt_text():
    p = aw.panel(b"x", "k < 8 & more")
    assert "k &lt; 8 &amp; more" in _caption(p)
    img = p.children[1].value
    # b"x", inline
    assert img.startswith('<img class="aebook-panel" src="data:image/png;base64,eA=="')
    assert 'alt="k &lt; 8 &amp; more"' in img  # the caption, when no alt text is given
    p = aw.panel(b"x", "k = 8", alt='ten digits and their "reconstructions"')
    assert (
        'alt="ten digits and their &quot;reconstructions&quot;"' in p.children[1].value
    )


def test_ipywidgets8_links_slider_to_stack_in_the_browser(monkeypatch):
    assert aw.has_stack(), "the book builds with ipywidgets 8"
    links = []
    real = ipywidgets.jslink
    monkeypatch.setattr(
        ipywidgets, "jslink", lambda a, b: links.append((a, b)) or real(a, b)
    )
    panels = _panels(3)
    box = aw.panel_slider(panels, ["2", "4", "8"], "k")
    slider, stack = box.children
    assert isinstance(stack, ipywidgets.Stack) and list(stack.children) == panels
    assert slider.options == ("2", "4", "8") and stack.selected_index == 0
    # The link lives in the frontend (jslink), so it works without a kernel.
    assert links == [((slider, "index"), (stack, "selected_index"))]


def test_ipywidgets7_fallback_swaps_the_panel_from_the_kernel(monkeypatch):
    monkeypatch.delattr(ipywidgets, "Stack")  # what Colab's ipywidgets 7.7.1 looks like
    assert not aw.has_stack()
    panels = _panels(3)
    box = aw.panel_slider(panels, ["2", "4", "8"], "k")
    slider, shown = box.children
    assert not hasattr(shown, "selected_index") and shown.children == (panels[0],)
    slider.value = "8"
    assert shown.children == (panels[2],)
    slider.index = 1
    assert shown.children == (panels[1],)


def test_grid_links_choice_and_slider():
    panels = {"gaussian": _panels(2, "g"), "masking": _panels(2, "m")}
    box = aw.panel_slider_grid(panels, ["0.0", "0.1"], "noise", "type")
    choice, slider, outer = box.children
    assert choice.options == ("gaussian", "masking") and isinstance(
        outer, ipywidgets.Stack
    )
    inner = outer.children
    assert [list(s.children) for s in inner] == [panels["gaussian"], panels["masking"]]


def test_grid_fallback_follows_both_controls(monkeypatch):
    monkeypatch.delattr(ipywidgets, "Stack")
    panels = {"gaussian": _panels(2, "g"), "masking": _panels(2, "m")}
    choice, slider, outer = aw.panel_slider_grid(
        panels, ["0.0", "0.1"], "noise", "type"
    ).children
    slider.index = 1
    choice.index = 1
    (inner,) = outer.children
    assert _caption(inner.children[0]) == _caption(panels["masking"][1])


@pytest.mark.parametrize("n_panels, labels", [(2, ["a"]), (0, [])])
def test_panels_and_labels_must_match(n_panels, labels):
    with pytest.raises(ValueError, match="one panel per label"):
        aw.panel_slider(_panels(n_panels), labels, "k")
    with pytest.raises(ValueError, match="one panel per label"):
        aw.panel_slider_grid({"a": _panels(n_panels)}, labels, "k", "t")
