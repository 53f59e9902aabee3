"""fit's per-epoch tracking hook (and its place in the cache), the classifier that
judges generated images, and the two-slider explorer's pieces."""

import ipywidgets
import numpy as np
import pytest
import torch

from aebook import widgets as aw
from aebook.cache import train_or_load
from aebook.metrics import classifier_scores, elbo, train_classifier
from aebook.models import VAE, Autoencoder
from aebook.penalties import GaussianKL
from aebook.training import evaluate, fit, set_seed

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def _vae():
    set_seed(0)
    return VAE([784, 16, 2])


def _test_elbo(model):
    # its own generator: watching must not change the run
    g = torch.Generator().manual_seed(1)
    x = torch.linspace(0, 1, 784).repeat(8, 1)
    recon, kl = elbo(model, x, generator=g)
    return {"reconstruction": recon.mean().item(), "kl": kl.mean().item()}


def test_track_records_one_number_per_epoch_and_changes_nothing(tiny):
    kw = dict(epochs=3, lr=3e-3, loss="bce", penalty=GaussianKL(1.0), progress=False)
    watched, plain = _vae(), _vae()
    h = fit(watched, tiny, track=_test_elbo, **kw)
    h_plain = fit(plain, tiny, **kw)
    assert set(h.tracked) == {"reconstruction", "kl"} and all(
        len(v) == 3 for v in h.tracked.values()
    )
    assert h_plain.tracked == {}
    assert h.train_loss == h_plain.train_loss  # the same run, watched or not
    for a, b in zip(watched.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)
    # The last tracked numbers are the trained model's own.
    assert h.tracked["kl"][-1] == pytest.approx(_test_elbo(watched)["kl"])
    assert h.tracked["kl"][0] != h.tracked["kl"][-1]


def test_track_must_keep_its_names(tiny):
    calls = []

    def fickle(model):
        calls.append(1)
        return {"a": 1.0} if len(calls) == 1 else {"b": 2.0}

    with pytest.raises(ValueError, match="same names after every epoch"):
        fit(Autoencoder([784, 4]), tiny, epochs=2, track=fickle, progress=False)


def test_tracked_numbers_survive_the_cache(tiny, tmp_path):
    kw = dict(
        name="vae",
        directory=tmp_path,
        epochs=2,
        lr=3e-3,
        loss="bce",
        penalty=GaussianKL(1.0),
        progress=False,
        track=_test_elbo,
    )
    _, first = train_or_load(_vae(), tiny, **kw)
    from aebook import cache

    cache._PRODUCED.clear()  # as in a new session: load from the file
    _, again = train_or_load(_vae(), tiny, **kw)
    assert again.tracked == first.tracked and len(again.tracked["kl"]) == 2
    # A run without track is another run (its history lacks the numbers), so another
    # file.
    train_or_load(_vae(), tiny, **{**kw, "track": None})
    assert len(list(tmp_path.glob("vae-*.pt"))) == 2


def test_classifier_learns_separable_classes_and_scores_what_it_sees():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(3, 20, generator=g)
    y = torch.arange(300) % 3
    x = (centres[y] + 0.05 * torch.randn(300, 20, generator=g)).clamp(0, 1)
    net = train_classifier(x, y, hidden=16, epochs=30, lr=1e-2, seed=0)
    assert not net.training and (net(x).argmax(1) == y).float().mean() > 0.95
    again = train_classifier(x, y, hidden=16, epochs=30, lr=1e-2, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), again.state_dict().values())
    )
    real = classifier_scores(net, x)
    assert real["confident"] > 0.9 and real["spread"] == pytest.approx(1.0, abs=1e-3)
    one_class = classifier_scores(net, centres[[0] * 50])
    assert one_class["spread"] == pytest.approx(0.0, abs=1e-6)
    blank = classifier_scores(net, torch.full((50, 20), 0.5))
    assert blank["confidence"] <= real["confidence"]


def test_classifier_inputs_are_checked():
    with pytest.raises(ValueError, match="one label per image"):
        train_classifier(torch.zeros(5, 4), torch.zeros(4, dtype=torch.long))
    net = torch.nn.Linear(4, 2)
    with pytest.raises(ValueError, match="threshold"):
        classifier_scores(net, torch.zeros(3, 4), threshold=1.5)


def test_evaluate_of_a_vae_uses_the_code_mean(tiny):
    vae = _vae().eval()
    # no sampling in eval
    assert evaluate(vae, tiny, loss="bce") == evaluate(vae, tiny, loss="bce")


def test_image_png_round_trips_and_checks_its_input():
    import io

    from PIL import Image

    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[2, 3] = (255, 0, 0)
    back = np.asarray(Image.open(io.BytesIO(aw.image_png(rgb))).convert("RGB"))
    assert np.array_equal(back, rgb)
    # With a palette, an image of few colours comes back exactly, in fewer bytes than a
    # noisy one.
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(aw.image_png(rgb, colors=4))).convert("RGB")),
        rgb,
    )
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(aw.image_png(noisy, colors=16)) < len(aw.image_png(noisy)) / 2
    with pytest.raises(ValueError, match="uint8"):
        aw.image_png(rgb.astype(float))
    with pytest.raises(ValueError, match="between 2 and 256"):
        aw.image_png(rgb, colors=300)


def _panels(rows, cols):
    return [
        [aw.panel(b"png", f"x = {i}, y = {j}") for i in range(cols)]
        for j in range(rows)
    ]


def test_two_sliders_link_in_the_browser():
    panels = _panels(2, 3)
    box = aw.panel_slider_2d(panels, ["0", "1", "2"], ["0", "1"], "x", "y")
    x, y, outer = box.children
    assert isinstance(outer, ipywidgets.Stack) and len(outer.children) == 2
    # row j holds panels[j]
    assert [list(row.children) for row in outer.children] == panels
    assert x.options == ("0", "1", "2") and y.options == ("0", "1")


def test_two_sliders_fall_back_to_the_kernel_on_ipywidgets7(monkeypatch):
    monkeypatch.delattr(ipywidgets, "Stack")
    panels = _panels(2, 3)
    x, y, outer = aw.panel_slider_2d(
        panels, ["0", "1", "2"], ["0", "1"], "x", "y"
    ).children

    def shown():
        (row,) = outer.children
        (p,) = row.children
        return p.children[0].value

    assert "x = 0, y = 0" in shown()
    x.value = "2"
    assert "x = 2, y = 0" in shown()
    y.value = "1"
    # the new row follows the x slider's current position
    assert "x = 2, y = 1" in shown()
    x.index = 1
    assert "x = 1, y = 1" in shown()


def test_two_sliders_need_a_panel_per_pair():
    with pytest.raises(ValueError, match="one row of panels per y label"):
        aw.panel_slider_2d(_panels(2, 3), ["0", "1", "2"], ["0"], "x", "y")
    with pytest.raises(ValueError, match="one panel per label"):
        aw.panel_slider_2d(_panels(2, 3), ["0", "1"], ["0", "1"], "x", "y")
