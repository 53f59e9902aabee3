import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # tests draw figures without a screen

import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder, so no test sees another's models or
    data."""
    monkeypatch.setenv("AEBOOK_CACHE", str(tmp_path / "cache"))
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
