import functools
import os

import pytest
import torch

from aebook import cache
from aebook.cache import describe, train_or_load
from aebook.models import Autoencoder
from aebook.paths import cache_dir
from aebook.training import set_seed

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")

FIT = {"epochs": 2, "batch_size": 50, "seed": 0, "progress": False}


def _model(seed=0, sizes=(784, 16, 4)):
    set_seed(seed)
    return Autoencoder(list(sizes))


def _files(folder=None):
    return sorted((folder or cache_dir() / "models").glob("*"))


def test_trains_once_then_loads(tiny, monkeypatch):
    trained, h1 = train_or_load(_model(), tiny, name="m", **FIT)
    assert len(_files()) == 1
    monkeypatch.setattr(
        cache, "fit", lambda *a, **k: pytest.fail("trained again instead of loading")
    )
    loaded, h2 = train_or_load(_model(), tiny, name="m", **FIT)
    assert h2 == h1 and not loaded.training
    for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_key_covers_config_data_init_and_fit_args(tiny):
    base = cache.cache_key(_model(), tiny, FIT)
    # how it runs is not what it learns
    assert cache.cache_key(_model(), tiny, {**FIT, "progress": True}) == base
    assert cache.cache_key(_model(), tiny, {**FIT, "device": "cpu"}) == base
    changed = [
        cache.cache_key(_model(sizes=(784, 16, 5)), tiny, FIT),
        cache.cache_key(_model(seed=1), tiny, FIT),
        cache.cache_key(_model(), tiny[:-1], FIT),
        cache.cache_key(_model(), tiny, {**FIT, "epochs": 3}),
        cache.cache_key(_model(), tiny, {**FIT, "val_x": tiny[:10]}),
    ]
    assert all(k != base for k in changed)
    assert base["aebook"] == cache.__version__


def test_an_argument_at_fits_default_gets_the_key_of_leaving_it_out(tiny):
    base = cache.cache_key(_model(), tiny, FIT)
    for same in (
        {"penalty": None},
        {"corrupt": None},
        {"lr": 1e-3},
        {"schedule": "constant"},
        {"loss": "mse"},
    ):
        assert cache.cache_key(_model(), tiny, {**FIT, **same}) == base, same
    for other in (
        {"lr": 2e-3},
        {"schedule": "cosine"},
        {"loss": "bce"},
        {"weight_decay": 1e-4},
    ):
        assert cache.cache_key(_model(), tiny, {**FIT, **other}) != base, other
    assert cache.cache_key(
        _model(), tiny, {**FIT, "batch_size": 128}
    ) == cache.cache_key(
        _model(), tiny, {k: v for k, v in FIT.items() if k != "batch_size"}
    )


def test_different_arguments_get_different_files(tiny):
    train_or_load(_model(), tiny, name="m", **FIT)
    train_or_load(_model(), tiny, name="m", **{**FIT, "epochs": 1})
    assert len(_files()) == 2


def test_corrupted_file_is_retrained_with_a_warning(tiny):
    _, h1 = train_or_load(_model(), tiny, name="m", **FIT)
    (path,) = _files()
    # truncated, as after a crash without atomic writes
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="training it again"):
        _, h2 = train_or_load(_model(), tiny, name="m", **FIT)
    assert h2.train_loss == h1.train_loss  # retrained from the same initial weights
    torch.load(path, weights_only=True)  # and the file is whole again


def test_mismatched_file_is_retrained_with_a_warning(tiny):
    train_or_load(_model(), tiny, name="m", **FIT)
    (path,) = _files()
    blob = torch.load(path, weights_only=True)
    # wrong shapes
    blob["state_dict"] = {k: v[..., :1] for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    with pytest.warns(RuntimeWarning, match="ignoring cached model"):
        _, h = train_or_load(_model(), tiny, name="m", **FIT)
    assert len(h.train_loss) == 2


def test_file_with_another_key_is_not_trusted(tiny):
    train_or_load(_model(), tiny, name="m", **FIT)
    (path,) = _files()
    blob = torch.load(path, weights_only=True)
    blob["key"] = blob["key"].replace('"epochs": 2', '"epochs": 99')
    torch.save(blob, path)
    with pytest.warns(RuntimeWarning, match="does not match"):
        train_or_load(_model(), tiny, name="m", **FIT)


def test_a_crash_while_saving_leaves_no_partial_file(tiny, monkeypatch):
    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the reader pressed stop mid-save

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        train_or_load(_model(), tiny, name="m", **FIT)
    assert _files() == []  # neither the final file nor a stray temporary


def test_existing_file_survives_a_crashed_rewrite(tiny, monkeypatch):
    train_or_load(_model(), tiny, name="m", **FIT)
    (path,) = _files()
    before = path.read_bytes()
    monkeypatch.setattr(
        torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError):
        cache._atomic_save(path, {"x": 1})
    assert path.read_bytes() == before and _files() == [path]


def test_environment_variable_moves_the_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("AEBOOK_CACHE", str(tmp_path / "elsewhere"))
    train_or_load(_model(), tiny, name="m", **FIT)
    assert len(_files(tmp_path / "elsewhere" / "models")) == 1


def test_explicit_directory_and_safe_names(tiny, tmp_path):
    train_or_load(_model(), tiny, name="a/b c", directory=tmp_path, **FIT)
    (path,) = _files(tmp_path)
    assert path.name.startswith("a_b_c-") and path.suffix == ".pt"


def _module_level_corruption(x, gen, level=0.1):
    return x


def test_describe_is_stable_for_names_partials_and_dataclasses():
    from aebook.models import AEConfig

    d = describe(_module_level_corruption)
    assert d["function"] == f"{__name__}._module_level_corruption" and d == describe(
        _module_level_corruption
    )
    p = functools.partial(_module_level_corruption, level=0.3)
    assert describe(p) == describe(
        functools.partial(_module_level_corruption, level=0.3)
    )
    assert describe(p) != describe(
        functools.partial(_module_level_corruption, level=0.4)
    )
    assert describe(AEConfig((784, 8)))["sizes"] == [784, 8]


def test_describe_covers_lambdas_and_closures_by_code_and_values():
    assert describe(lambda x, g: x) != describe(lambda x, g: x * 2)

    def make(level):
        def inner(x, g):
            return x * level

        return inner

    assert describe(make(0.1)) == describe(make(0.1)) and describe(
        make(0.1)
    ) != describe(make(0.2))


def test_describe_refuses_what_it_cannot_describe():
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="stable cache key.*pass numbers"):
        # closes over a lock: no state to describe
        describe(lambda x, g: x if lock else x)
    with pytest.raises(TypeError, match="stable cache key"):
        describe(object())


def test_cache_dir_defaults_to_the_repo(monkeypatch):
    from aebook import paths

    monkeypatch.delenv("AEBOOK_CACHE")
    root = paths.repo_root()
    assert root is not None and (root / "_config.yml").is_file()
    assert paths.cache_dir() == root / ".cache"
    assert ".cache/" in (root / ".gitignore").read_text().split()


def test_no_stray_temporaries_after_success(tiny):
    train_or_load(_model(), tiny, name="m", **FIT)
    assert [p.name for p in _files() if p.name.startswith(".")] == []
    assert os.listdir(cache_dir() / "models") == [_files()[0].name]
