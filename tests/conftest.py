import sys
from pathlib import Path

import matplotlib
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the stand-in device, tests/standin.py
try:
    import standin  # noqa: E402  (registers the device "standin")
except Exception:  # a torch without its private APIs: test_devices.py fails and says so
    standin = None

from aebook import devices  # noqa: E402

matplotlib.use("Agg")  # tests draw figures without a screen

import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder, so no test sees another's models or
    data."""
    monkeypatch.setenv("AEBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(devices.ENV, raising=False)
    monkeypatch.setattr(devices, "_chosen", None)  # no chapter device left by a test
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """The default dataset, loaded once for the session from its own cache folder."""
    from aebook.data import load_data

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AEBOOK_CACHE", str(tmp_path_factory.mktemp("data-cache")))
        return load_data()


@pytest.fixture
def tiny():
    """200 'images' in [0, 1] that lie near a 4-D subspace, so a small autoencoder can
    learn them fast."""
    g = torch.Generator().manual_seed(0)
    return torch.sigmoid(
        2 * torch.randn(200, 4, generator=g) @ torch.randn(4, 784, generator=g) / 2
    )


# The devices the package's device tests run on: the CPU always, a CUDA GPU where there
# is one, and the stand-in (a CPU-backed device that fails where CUDA fails) everywhere.
DEVICES = [
    "cpu",
    *(["cuda"] if torch.cuda.is_available() else []),
    *([standin.NAME] if standin is not None else []),
]


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """Each device in turn as the book's device: ``"auto"`` (fit's, recipes' and
    setup's default) means it, as AEBOOK_DEVICE does for a chapter. A module opts in
    with ``pytestmark = pytest.mark.usefixtures("device")``."""
    monkeypatch.setenv(devices.ENV, request.param)
    return devices.resolve_device(request.param)
