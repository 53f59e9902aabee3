"""Fault injection: the cache and the data layer never serve a stale or broken result,
never lose work, and bad input gets an error that says what to do.

Each test reproduces one way a reader (editing cells, re-running them, interrupting
them, running from folders they cannot write to) got a silent wrong result or lost work
from the package before.
"""

from __future__ import annotations

import ast
import copy
import linecache
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aebook import cache, data
from aebook.cache import cache_key, train_or_load
from aebook.models import Autoencoder
from aebook.paths import cache_dir
from aebook.training import fit, set_seed

FIT = {"epochs": 2, "batch_size": 50, "seed": 0, "progress": False}


def _model(seed=0, sizes=(784, 16, 4), **kw):
    set_seed(seed)
    return Autoencoder(list(sizes), **kw)


def _models():
    return sorted((cache_dir() / "models").glob("*.pt"))


def _no_training(monkeypatch):
    monkeypatch.setattr(cache, "fit", lambda *a, **k: pytest.fail("trained again"))


_cells = 0


def _cell(source: str) -> dict:
    """Run ``source`` as a notebook cell would: its own file name, its source in
    linecache."""
    global _cells
    _cells += 1
    name = f"<ipython-input-{_cells}-faults>"
    source = textwrap.dedent(source)
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    namespace = {"__name__": "__main__", "torch": torch}
    exec(compile(source, name, "exec"), namespace)
    return namespace


# --- 1. Stale models from edited code
# -------------------------------------------------------


def test_an_edited_notebook_penalty_trains_again(tiny):
    first = _cell("def my_penalty(model, x, h):\n    return 0.001 * h.abs().sum()\n")[
        "my_penalty"
    ]
    edited = _cell("def my_penalty(model, x, h):\n    return 0.5 * h.pow(2).sum()\n")[
        "my_penalty"
    ]
    a, _ = train_or_load(_model(), tiny, name="p", penalty=first, **FIT)
    b, _ = train_or_load(_model(), tiny, name="p", penalty=edited, **FIT)
    assert len(_models()) == 2 and not torch.equal(
        a.encoder[0].weight, b.encoder[0].weight
    )


def test_a_notebook_global_the_penalty_reads_is_in_the_key(tiny):
    one = _cell(
        "LAMBDA = 0.1\ndef pen(model, x, h):\n    return LAMBDA * h.abs().sum()\n"
    )["pen"]
    two = _cell(
        "LAMBDA = 0.2\ndef pen(model, x, h):\n    return LAMBDA * h.abs().sum()\n"
    )["pen"]
    assert cache_key(_model(), tiny, {**FIT, "penalty": one}) != cache_key(
        _model(), tiny, {**FIT, "penalty": two}
    )


class _Scaled:
    def __init__(self, weight):
        self.weight = weight

    def pen(self, model, x, h):
        return self.weight * h.abs().mean()


def test_bound_methods_of_different_instances_get_different_keys(tiny):
    keys = [
        cache_key(_model(), tiny, {**FIT, "penalty": _Scaled(w).pen})
        for w in (0, 100, 0)
    ]
    assert keys[0] != keys[1] and keys[0] == keys[2]


class _CallableScaled(_Scaled):
    def __call__(self, model, x, h):
        return self.pen(model, x, h)


def test_callable_objects_are_described_by_their_state(tiny):
    assert cache_key(
        _model(), tiny, {**FIT, "penalty": _CallableScaled(1)}
    ) != cache_key(_model(), tiny, {**FIT, "penalty": _CallableScaled(2)})


def test_an_edited_package_penalty_changes_the_key(tiny, monkeypatch):
    from aebook.penalties import L1Sparsity

    before = cache_key(_model(), tiny, {**FIT, "penalty": L1Sparsity(1e-3)})
    edited = _cell(
        "def __call__(self, model, x_in, h):\n    return self.lam * "
        "h.pow(2).sum(dim=1).mean()\n"
    )
    # as if penalties.py were edited
    monkeypatch.setattr(L1Sparsity, "__call__", edited["__call__"])
    assert cache_key(_model(), tiny, {**FIT, "penalty": L1Sparsity(1e-3)}) != before


def test_an_edited_training_loop_changes_the_key(tiny, monkeypatch):
    import inspect

    from aebook import training

    before = cache_key(_model(), tiny, FIT)
    real = inspect.getsource
    monkeypatch.setattr(
        inspect,
        "getsource",
        lambda obj: real(obj) + "\nEDITED = 1\n" if obj is training else real(obj),
    )
    assert cache_key(_model(), tiny, FIT) != before


def test_a_docstring_or_comment_edit_keeps_every_key_and_a_code_edit_changes_it(
    tiny, monkeypatch
):
    import inspect

    from aebook import models, training
    from aebook.penalties import L1Sparsity

    def key():
        return cache_key(_model(), tiny, {**FIT, "penalty": L1Sparsity(1e-3)})

    before, real = key(), inspect.getsource

    def edited(change):
        def getsource(obj):
            text = real(obj)
            return change(text) if obj in (training, models) else text

        return getsource

    # a reworded module docstring, a new comment, a reworded function docstring, new
    # layout
    monkeypatch.setattr(
        inspect, "getsource", edited(lambda t: t.replace('"""', '"""Reworded. ', 1))
    )
    assert key() == before
    monkeypatch.setattr(
        inspect,
        "getsource",
        edited(
            lambda t: (
                "# a new comment\n"
                + t.replace("def fit(", "def fit(  # a comment in a signature\n", 1)
            )
        ),
    )
    assert key() == before
    # a changed line of code
    monkeypatch.setattr(inspect, "getsource", edited(lambda t: t + "\nEDITED = 2\n"))
    assert key() != before
    # the same holds for a function's own digest, as used for penalties and notebook
    # code
    src = 'def f(x):\n    """Doc."""\n    return x + 1  # why\n'
    assert cache.source_digest(src) == cache.source_digest(
        src.replace("Doc.", "Other doc.").replace("# why", "")
    )
    assert cache.source_digest(src) != cache.source_digest(
        src.replace("x + 1", "x + 2")
    )
    f, g, h = (
        _cell(src.replace("Doc.", doc).replace("x + 1", body))["f"]
        for doc, body in (("Doc.", "x + 1"), ("Other doc.", "x + 1"), ("Doc.", "x + 2"))
    )
    assert cache.code_digest(f) == cache.code_digest(g) != cache.code_digest(h)


def test_keys_are_the_same_in_every_process(tiny):
    code = (
        "import torch; from aebook.cache import cache_key; from aebook.models import "
        "Autoencoder; "
        "from aebook.penalties import KLSparsity; from aebook.data import Corruption; "
        "torch.manual_seed(0); m = Autoencoder([784, 8], code='sigmoid'); "
        "print(cache_key(m, torch.zeros(3, 784), dict(epochs=1, "
        "penalty=KLSparsity(0.1), "
        "corrupt=Corruption('gaussian', 0.3))))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2)
    }
    assert len(outs) == 1


# --- 2. Re-running a cell
# --------------------------------------------------------------------


def test_rerunning_a_cell_returns_the_trained_model_as_it_is(tiny, monkeypatch):
    model, history = train_or_load(_model(), tiny, name="m", **FIT)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    _no_training(monkeypatch)
    # the same cell, run a second time
    again, h2 = train_or_load(model, tiny, name="m", **FIT)
    assert again is model and h2 == history and len(_models()) == 1
    assert all(torch.equal(weights[k], v) for k, v in again.state_dict().items())
    # any model with those weights
    twin, _ = train_or_load(copy.deepcopy(model), tiny, name="m", **FIT)
    assert len(_models()) == 1 and torch.equal(
        twin.encoder[0].weight, model.encoder[0].weight
    )


def test_a_trained_model_with_other_arguments_does_train(tiny):
    model, _ = train_or_load(_model(), tiny, name="m", **FIT)
    # fine-tuning it further is a new run
    train_or_load(model, tiny, name="m", **{**FIT, "epochs": 1})
    assert len(_models()) == 2


# --- 3 and 6. Damaged files
# --------------------------------------------------------------------


def _flip_a_weight_bit(path: Path) -> None:
    blob = torch.load(path, weights_only=True)
    w = blob["state_dict"]["encoder.0.weight"]
    raw = bytearray(path.read_bytes())
    # where the tensor's data sits in the file
    needle = w.flatten()[:4].numpy().tobytes()
    at = raw.find(needle)
    assert at > 0
    raw[at + 3] ^= 0x40  # the exponent of the first weight
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage", ["truncated", "empty", "flipped bit", "other key", "nan weights"]
)
def test_any_damage_to_a_model_file_means_a_warning_and_a_retrain(tiny, damage):
    _, h1 = train_or_load(_model(), tiny, name="m", **FIT)
    (path,) = _models()
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-300])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flipped bit":
        _flip_a_weight_bit(path)
    else:
        blob = torch.load(path, weights_only=True)
        if damage == "other key":
            blob["key"] = blob["key"].replace('"epochs": 2', '"epochs": 3')
        # NaN weights, with a digest that matches them: only the finiteness check can
        # catch it
        else:
            blob["state_dict"]["encoder.0.weight"][0, 0] = float("nan")
            blob["weights"] = cache.weights_digest(blob["state_dict"])
        torch.save(blob, path)
    with pytest.warns(RuntimeWarning, match="training it again"):
        model, h2 = train_or_load(_model(), tiny, name="m", **FIT)
    assert (
        h2.train_loss == h1.train_loss and torch.isfinite(model.encoder[0].weight).all()
    )
    blob = torch.load(path, weights_only=True)  # and the file is whole again
    assert blob["weights"] == cache.weights_digest(blob["state_dict"])


@pytest.mark.parametrize("damage", ["truncated", "empty", "flipped bit"])
def test_any_damage_to_the_data_cache_means_a_warning_and_a_rebuild(digits, damage):
    data.load_data()
    path = cache_dir() / "data" / "mnist5k.npz"
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        raw = bytearray(raw)
        raw[len(raw) // 3] ^= 0x01  # inside the images: the zip's CRC-32 catches it
        path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="damaged data cache"):
        again = data.load_data()
    assert torch.equal(again.test_x, digits.test_x)
    # and the file was rebuilt
    assert torch.equal(data.load_data().train_x, digits.train_x)


# --- 4. Unusable cache folders
# ------------------------------------------------------------------


def test_a_cache_path_that_is_a_file_warns_once_and_loses_nothing(
    tiny, tmp_path, monkeypatch
):
    from aebook import paths

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AEBOOK_CACHE", str(blocker))
    monkeypatch.setattr(paths, "_warned", set())
    with pytest.warns(RuntimeWarning) as seen:
        model, history = train_or_load(_model(), tiny, name="m", **FIT)
        train_or_load(_model(seed=1), tiny, name="m", **FIT)
        digits = data.load_data()
    messages = [str(w.message) for w in seen]
    # models, data
    assert len(messages) == 2 and all(
        "is a file" in m and "AEBOOK_CACHE" in m for m in messages
    )
    assert len(history.train_loss) == 2 and digits.train_x.shape == (4000, 784)


_READONLY_SCRIPT = r"""
import json, os, warnings, torch
from aebook.cache import train_or_load
from aebook.data import load_data
from aebook.models import Autoencoder
try:  # prove that this process really cannot write there
    open(os.path.join(os.environ["AEBOOK_CACHE"], "probe"), "w")
    writable = True
except PermissionError:
    writable = False
torch.manual_seed(0)
x = torch.rand(100, 784)
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    model, history = train_or_load(
        Autoencoder([784, 8]), x, name="m", epochs=2, progress=False
    )
    again, _ = train_or_load(
        Autoencoder([784, 8]), x, name="n", epochs=1, progress=False
    )
    digits = load_data()
print(json.dumps({"writable": writable, "epochs": len(history.train_loss),
                  "shape": list(digits.train_x.shape),
                  "warnings": [str(w.message) for w in seen]}))
"""


def _without_root_privileges():
    """In the child, before exec: drop the capabilities that let root ignore file
    permissions.

    The child keeps uid 0 (this machine's Python lives under /root, which no other user
    may enter), but without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH the kernel checks a
    folder's permission bits for it as for anyone: a 0555 folder is read-only, even to
    its owner.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        # PR_CAPBSET_DROP: gone from every program exec'd after
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_cache_folder_warns_and_loses_nothing():
    import json

    folder = Path(os.environ["AEBOOK_CACHE"]).parent / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _READONLY_SCRIPT],
            env={**os.environ, "AEBOOK_CACHE": str(folder)},
            preexec_fn=_without_root_privileges,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        folder.chmod(0o755)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["writable"] is False  # the child really was unprivileged
    assert result["epochs"] == 2 and result["shape"] == [4000, 784]  # the work went on
    # one warning for the models and one for the data, not one per model
    assert len(result["warnings"]) == 2 and all(
        "without caching" in w for w in result["warnings"]
    ), result
    assert list(folder.iterdir()) == []


def test_a_full_disk_while_saving_warns_and_returns_the_model(tiny, monkeypatch):
    from aebook import paths

    monkeypatch.setattr(paths, "_warned", set())

    def full(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "_atomic_save", full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        model, history = train_or_load(_model(), tiny, name="m", **FIT)
    assert len(history.train_loss) == 2 and _models() == []


# --- 5. NaN and inf
# -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["train_x", "val_x"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_data_is_refused(tiny, where, bad):
    x = tiny.clone()
    x[3, 5] = bad
    kwargs = {"val_x": x} if where == "val_x" else {}
    with pytest.raises(ValueError, match=f"{where} holds 1 NaN or infinite"):
        fit(_model(), tiny if where == "val_x" else x, **FIT, **kwargs)


@pytest.mark.parametrize("lr", [float("inf"), float("nan"), 0.0])
def test_a_non_finite_or_zero_learning_rate_is_refused(tiny, lr):
    with pytest.raises(ValueError, match="finite lr > 0"):
        fit(_model(), tiny, **{**FIT, "lr": lr})


def test_a_loss_that_turns_nan_stops_the_run_and_nothing_is_cached(tiny):
    blow_up = _cell("def blow_up(model, x, h):\n    return h.sum() * float('nan')\n")[
        "blow_up"
    ]
    with pytest.raises(FloatingPointError, match="epoch 1 of 2.*smaller lr"):
        train_or_load(_model(), tiny, name="m", penalty=blow_up, **FIT)
    assert _models() == []


# --- 7. Torchvision downloads
# ----------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(raw: Path, n: int = 20) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _write_idx(
            raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28))
        )
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_a_damaged_torchvision_download_is_removed_and_fetched_again(monkeypatch):
    from torchvision import datasets

    raw = cache_dir() / "data" / "torchvision" / "MNIST" / "raw"
    _fake_mnist(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])  # an interrupted download
    fetched = []

    def download(self):  # stands in for the network
        if not self._check_exists():
            fetched.append(True)
            _fake_mnist(Path(self.raw_folder))

    monkeypatch.setattr(datasets.MNIST, "download", download)
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *a, **k: type("C", (), {"close": lambda s: None})(),
    )
    with pytest.warns(RuntimeWarning, match="damaged.*downloading again"):
        full = data.load_data("mnist")
    assert fetched == [True] and full.train_x.shape == (20, 784)
    # repaired for good
    assert data.load_data("mnist").test_x.shape == (20, 784) and fetched == [True]


def test_a_dns_server_that_does_not_answer_fails_within_seconds(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "none")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(30))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="needs internet.*load_data\\('mnist5k'\\)"):
        data.load_data("fashion-mnist")
    assert time.perf_counter() - start < 5  # a fail-fast guard, not a benchmark


# --- 8. Errors that say what to do
# -------------------------------------------------------------------


def test_numpy_scalars_are_numbers(tiny):
    model, history = train_or_load(
        _model(),
        tiny,
        name="m",
        epochs=np.int64(2),
        lr=np.float32(1e-3),
        batch_size=np.int32(50),
        seed=0,
        progress=False,
    )
    assert len(history.train_loss) == 2
    assert cache_key(_model(), tiny, {"epochs": np.int64(2)}) == cache_key(
        _model(), tiny, {"epochs": 2}
    )


@pytest.mark.parametrize(
    "sizes, what",
    [
        ("784", "list of layer widths"),
        ([784, 32.5], "whole number"),
        ([784, "32"], "whole number"),
        ([784, True], "whole number"),
    ],
)
def test_bad_layer_sizes_are_refused(sizes, what):
    with pytest.raises(ValueError, match=what):
        Autoencoder(sizes)


def test_a_missing_gpu_is_a_clear_error(tiny):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU; use device='auto'"):
        fit(_model(), tiny, **FIT, device="cuda")


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match="train_x is empty"):
        fit(_model(), torch.zeros(0, 784), **FIT)


def test_a_penalty_must_return_a_scalar(tiny):
    per_unit = _cell("def per_unit(model, x, h):\n    return h.abs().mean(dim=0)\n")[
        "per_unit"
    ]
    with pytest.raises(ValueError, match=r"scalar tensor.*\(4,\)"):
        fit(_model(), tiny, **FIT, penalty=per_unit)


def test_integer_images_are_refused_and_float64_is_converted(tiny):
    with pytest.raises(ValueError, match=r"uint8.*\.float\(\) / 255"):
        fit(_model(), (tiny * 255).to(torch.uint8), **FIT)
    a, b = _model(), _model()
    fit(a, tiny, **FIT)
    fit(b, tiny.double(), **FIT)
    assert torch.equal(a.encoder[0].weight, b.encoder[0].weight)
    from aebook.training import encode, evaluate

    assert encode(a, tiny.double()).dtype == torch.float32 and evaluate(
        a, tiny.double()
    ) == evaluate(a, tiny)


def test_gaussian_noise_on_unscaled_images_is_refused():
    with pytest.raises(ValueError, match=r"in \[0, 1\].*/ 255"):
        data.corrupt(torch.full((2, 784), 200.0), "gaussian", 0.1)


def test_kl_sparsity_needs_a_code_in_0_1(tiny):
    from aebook.penalties import KLSparsity

    with pytest.raises(ValueError, match="code='sigmoid'"):
        fit(
            _model(sizes=(784, 16), code="identity"),
            tiny,
            **FIT,
            penalty=KLSparsity(0.1),
        )


def test_unroll_refuses_a_stack_it_cannot_compose_exactly():
    from aebook.pretraining import layer_autoencoder, unroll

    ok = [
        layer_autoencoder(784, 16, True, False),
        layer_autoencoder(16, 4, False, True),
    ]
    unroll(ok)
    wrong = [Autoencoder([784, 16], code="sigmoid"), ok[1]]
    with pytest.raises(ValueError, match="built by greedy_pretrain"):
        unroll(wrong)


def test_image_grid_needs_a_row_length():
    from aebook.plotting import image_grid

    with pytest.raises(ValueError, match="nrow >= 1"):
        image_grid(torch.rand(4, 784), nrow=0)


# --- 9. Small things: killed writers, file modes, import direction
# -------------------------------------

_KILLED_SCRIPT = r"""
import os, signal, torch
from aebook.cache import train_or_load
from aebook.models import Autoencoder

def die_halfway(obj, f):
    f.write(b"half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = die_halfway
torch.manual_seed(0)
train_or_load(
    Autoencoder([784, 8]), torch.rand(50, 784), name="m", epochs=1, progress=False
)
"""


def test_a_writer_killed_mid_save_leaves_a_temporary_that_a_later_save_clears(tiny):
    out = subprocess.run(
        [sys.executable, "-c", _KILLED_SCRIPT], env=os.environ.copy(), timeout=120
    )
    assert out.returncode == -signal.SIGKILL
    folder = cache_dir() / "models"
    (stray,) = folder.glob(".*.tmp")
    assert list(folder.glob("*.pt")) == []  # never a half-written model file
    old = time.time() - 2 * 3600  # hours later, the writer is surely gone
    os.utime(stray, (old, old))
    set_seed(0)
    train_or_load(
        Autoencoder([784, 8]), torch.rand(50, 784), name="m", epochs=1, progress=False
    )
    assert list(folder.glob(".*.tmp")) == [] and len(list(folder.glob("m-*.pt"))) == 1


def test_cache_files_are_readable_by_others(tiny):
    train_or_load(_model(), tiny, name="m", **FIT)
    data.load_data()
    for path in (*_models(), cache_dir() / "data" / "mnist5k.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_training_does_not_import_the_cache():
    from aebook import training

    tree = ast.parse(Path(training.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any(m and "cache" in m for m in imported), imported
