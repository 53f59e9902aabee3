"""The device rules (`aebook.devices`): one device chosen once, helpers that run where
the model is, draws that are the same on every device, a cache that knows the device;
and the stand-in device (tests/standin.py) that guards them on a machine without a
GPU."""

import json

import pytest
import standin
import torch

from aebook import devices
from aebook.cache import cache_key, train_or_load
from aebook.data import Corruption, RandomShift
from aebook.diffusion import Denoiser, NoisePrediction, Schedule
from aebook.metrics import elbo
from aebook.models import VAE, Autoencoder, ConvAutoencoder
from aebook.notebook import setup
from aebook.penalties import encoder_jacobian_norm_sq
from aebook.training import encode, evaluate, fit, reconstruct

STANDIN = torch.device(standin.NAME, 0)


# --- the stand-in still fails where CUDA fails (a smoke test after a torch upgrade) --


def test_the_standin_refuses_to_mix_devices_as_cuda_does():
    x = torch.rand(4, 3)
    y = x.to(standin.NAME)
    assert y.device == STANDIN and torch.equal(y.cpu(), x)
    with pytest.raises(RuntimeError, match="same device"):
        y + x
    with pytest.raises(RuntimeError, match="same device"):
        torch.nn.Linear(3, 2).to(standin.NAME)(x)
    with pytest.raises(TypeError, match="Tensor.cpu"):
        y.numpy()
    with pytest.raises(RuntimeError, match="device type for generator"):
        torch.randn(3, generator=torch.Generator(), device=standin.NAME)
    # what CUDA allows: a 0-d CPU tensor as a number, CPU indices, .item() and .cpu()
    assert (y * torch.tensor(2.0)).cpu().equal(2 * x)
    assert y[torch.tensor([0, 2])].cpu().equal(x[[0, 2]])
    with pytest.raises(RuntimeError, match="indices should be either on cpu"):
        x[torch.tensor([0, 2]).to(standin.NAME)]
    assert y.sum().item() == pytest.approx(x.sum().item())


def test_the_standin_trains_bit_for_bit_like_the_cpu():
    x = torch.rand(256, 784)
    runs = {}
    for dev in ("cpu", standin.NAME):
        torch.manual_seed(0)
        model = ConvAutoencoder((4, 8), 6)  # convolutions and BatchNorm
        history = fit(model, x, epochs=2, batch_size=64, device=dev, progress=False)
        runs[dev] = (history.train_loss, reconstruct(model, x[:8]))
    assert runs["cpu"][0] == runs[standin.NAME][0]
    assert torch.equal(runs["cpu"][1], runs[standin.NAME][1])


# --- one device, chosen once ------------------------------------------------------


def test_auto_is_the_chapters_device_then_the_environment_then_cuda_then_cpu(
    monkeypatch,
):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve_device("auto").type == expected
    monkeypatch.setenv(devices.ENV, standin.NAME)
    assert devices.resolve_device("auto").type == standin.NAME
    assert devices.resolve_device("cpu").type == "cpu"  # a named device wins
    assert devices.use("cpu").type == "cpu"  # the chapter chose: auto follows it
    assert devices.resolve_device("auto").type == "cpu"


def test_bad_device_names_say_what_to_do(monkeypatch):
    with pytest.raises(ValueError, match="not a device name"):
        devices.resolve_device("gpu")
    monkeypatch.setenv(devices.ENV, "tpu-please")
    with pytest.raises(ValueError, match="AEBOOK_DEVICE"):
        devices.resolve_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            devices.resolve_device("cuda")


def test_auto_never_picks_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve_device("auto").type == "cpu"


def test_setup_honours_the_environment_and_records_where_it_ran(monkeypatch, capsys):
    monkeypatch.setenv(devices.ENV, standin.NAME)
    data, device, claim = setup("01_overview", "mnist5k")
    assert (
        device.type == standin.NAME and "running on standin" in capsys.readouterr().out
    )
    # fit, recipes and the helpers' "auto" is now the chapter's device
    model = Autoencoder([784, 4])
    fit(model, data.train_x[:64], epochs=1, progress=False)
    assert devices.model_device(model) == STANDIN
    claim("a finding", True, value=1.0)
    from aebook.claims import records_dir

    path = records_dir() / "mnist5k" / "01_overview.json"
    record = json.loads(path.read_text())
    assert record["where"]["device"] == standin.NAME
    assert record["where"]["torch"] == torch.__version__.split("+")[0]
    # the model's history says where its seconds were spent
    assert (
        fit(
            Autoencoder([784, 4]), data.train_x[:64], epochs=1, progress=False
        ).trained_on["device"]
        == standin.NAME
    )


def test_a_device_named_in_setup_is_what_auto_means_afterwards(monkeypatch):
    monkeypatch.setenv(devices.ENV, standin.NAME)
    setup("01_overview", "mnist5k", device="cpu")  # chapter 10 pins the CPU so
    assert devices.resolve_device("auto").type == "cpu"


def test_cuda_is_made_repeatable(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        devices.deterministic_cuda()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
        assert torch.are_deterministic_algorithms_enabled()
        assert devices.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before)


# --- no helper moves a model; they return CPU tensors ------------------------------


@pytest.mark.parametrize("where", ["cpu", standin.NAME])
def test_helpers_run_where_the_model_is_and_leave_it_there(where, monkeypatch):
    # the book's device is the stand-in; the model was put elsewhere on purpose
    monkeypatch.setenv(devices.ENV, standin.NAME)
    torch.manual_seed(0)
    model = Autoencoder([784, 16, 4]).to(where)
    x = torch.rand(10, 784)
    codes, recon = encode(model, x), reconstruct(model, x)
    loss = evaluate(model, x)
    assert devices.model_device(model).type == where
    assert codes.device.type == recon.device.type == "cpu"
    assert loss == pytest.approx(((recon - x) ** 2).mean().item())
    # the encoder's Jacobian runs where the encoder is, from CPU inputs
    assert encoder_jacobian_norm_sq(model.encoder, x).shape == (10,)


def test_a_vae_on_the_device_takes_a_cpu_generator():
    torch.manual_seed(0)
    vae = VAE([784, 32, 4])
    x = torch.rand(64, 784)
    cpu = elbo(vae, x, generator=torch.Generator().manual_seed(1))
    vae.to(standin.NAME)
    moved = elbo(vae, x, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(cpu, moved))


def test_every_hook_draws_the_same_numbers_on_the_device():
    # the corruption, the shift, the VAE's noise and the denoiser's noise all draw from
    # fit's CPU generator, so the stand-in run equals the CPU run
    x = torch.rand(128, 784)
    cases = {
        "corrupt": (
            lambda: Autoencoder([784, 8]),
            dict(corrupt=Corruption("masking", 0.3)),
        ),
        "blind": (
            lambda: Autoencoder([784, 8]),
            dict(corrupt=Corruption("gaussian", 0.3, blind=True)),
        ),
        "shift": (lambda: Autoencoder([784, 8]), dict(augment=RandomShift(2))),
        "vae": (lambda: VAE([784, 16, 4]), {}),
        "diffusion": (
            lambda: Denoiser(784, (16,), time_dim=8),
            dict(objective=NoisePrediction(Schedule(10))),
        ),
    }
    for name, (build, hooks) in cases.items():
        losses = []
        for dev in ("cpu", standin.NAME):
            torch.manual_seed(0)
            history = fit(
                build(), x, epochs=1, batch_size=32, device=dev, progress=False, **hooks
            )
            losses.append(history.train_loss)
        assert losses[0] == losses[1], name


# --- the cache knows the device ----------------------------------------------------


def test_the_cache_key_names_the_devices_arithmetic(monkeypatch):
    model, x = Autoencoder([784, 4]), torch.rand(8, 784)
    cpu = cache_key(model, x, {"epochs": 1, "device": "cpu"})
    stand = cache_key(model, x, {"epochs": 1, "device": standin.NAME})
    assert cpu["device"] == stand["device"] == "cpu"  # same numbers, one entry
    # a GPU is its own entry, per GPU and torch version (they round differently)
    cuda = torch.device("cuda")
    monkeypatch.setattr("aebook.cache.resolve_device", lambda d="auto": cuda)
    monkeypatch.setattr(
        devices, "describe", lambda d: {"device": "cuda", "gpu": "L4", "torch": "2.11"}
    )
    assert cache_key(model, x, {"epochs": 1})["device"] == "cuda, L4, 2.11"


def test_a_cached_model_records_where_it_was_trained(tmp_path):
    x = torch.rand(32, 784)

    def load():
        torch.manual_seed(0)
        return train_or_load(
            Autoencoder([784, 4]),
            x,
            name="m",
            directory=tmp_path,
            epochs=1,
            device=standin.NAME,
            progress=False,
        )

    model, _ = load()
    assert devices.model_device(model) == STANDIN
    (path,) = tmp_path.glob("m-*.pt")
    blob = torch.load(path, weights_only=True)
    assert blob["history"]["trained_on"]["device"] == standin.NAME
    assert blob["history"]["trained_on"]["torch"] == torch.__version__.split("+")[0]
    from aebook import cache

    cache._PRODUCED.clear()  # as in a new session: from the file
    assert load()[1].trained_on["device"] == standin.NAME
