import pytest
import torch

from aebook.models import Autoencoder
from aebook.pretraining import greedy_pretrain, layer_autoencoder, unroll
from aebook.training import (
    History,
    encode,
    evaluate,
    fit,
    reconstruct,
    reconstruction_loss,
    set_seed,
)

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def _model(seed=0, **kw):
    set_seed(seed)
    return Autoencoder([784, 32, 8], **kw)


def test_fit_reduces_the_loss(tiny):
    h = fit(
        _model(),
        tiny,
        epochs=15,
        batch_size=32,
        lr=3e-3,
        val_x=tiny[:50],
        progress=False,
    )
    assert isinstance(h, History) and len(h.train_loss) == 15 and len(h.val_loss) == 15
    assert h.train_loss[-1] < 0.8 * h.train_loss[0]
    assert h.seconds > 0


def test_same_seed_gives_bit_identical_losses(tiny):
    a = fit(_model(), tiny, epochs=3, batch_size=16, seed=7, progress=False)
    b = fit(_model(), tiny, epochs=3, batch_size=16, seed=7, progress=False)
    c = fit(_model(), tiny, epochs=3, batch_size=16, seed=8, progress=False)
    assert a.train_loss == b.train_loss
    assert a.train_loss != c.train_loss


def test_penalty_hook_is_added_to_the_objective(tiny):
    calls = []

    def penalty(model, x_in, h):
        calls.append((x_in.shape, h.shape))
        return 10.0 * h.abs().mean()

    plain = fit(_model(), tiny, epochs=1, batch_size=50, progress=False)
    pen = fit(_model(), tiny, epochs=1, batch_size=50, penalty=penalty, progress=False)
    assert calls == [((50, 784), (50, 8))] * 4
    assert pen.train_loss[0] > plain.train_loss[0]


def test_corruption_feeds_the_encoder_but_target_stays_clean(tiny):
    seen = []

    def corrupt(x, gen):
        assert isinstance(gen, torch.Generator)
        noisy = torch.zeros_like(x)  # the encoder sees nothing at all
        seen.append(noisy)
        return noisy

    model = _model()
    fit(
        model, tiny, epochs=30, batch_size=200, lr=1e-2, corrupt=corrupt, progress=False
    )
    assert len(seen) == 30
    # With a blank input, the best the model can do is output the mean image of the
    # clean targets.
    r = reconstruct(model, torch.zeros(1, 784))
    assert torch.allclose(r[0], tiny.mean(0), atol=0.05)


def test_bce_loss_and_model_left_in_eval_mode(tiny):
    model = _model()
    h = fit(model, tiny, epochs=2, loss="bce", progress=False)
    assert not model.training
    assert h.train_loss[-1] > 0.5  # BCE of random pixels is far above MSE's scale


def test_bce_needs_sigmoid_output(tiny):
    with pytest.raises(ValueError, match="out='sigmoid'"):
        fit(_model(out="identity"), tiny, epochs=1, loss="bce", progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1, "batch_size": 0}, "batch_size"),
        ({"epochs": 1, "lr": -1.0}, "lr"),
        ({"epochs": 1, "loss": "l1"}, "unknown loss"),
    ],
)
def test_bad_fit_arguments(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(_model(), tiny, progress=False, **kwargs)


def test_bad_data_shapes(tiny):
    with pytest.raises(ValueError, match="flatten"):
        fit(_model(), tiny.reshape(200, 28, 28), epochs=1, progress=False)
    with pytest.raises(ValueError, match="val_x"):
        fit(_model(), tiny, epochs=1, val_x=tiny[:, :100], progress=False)


def test_progress_bar_reports_epochs(tiny, capsys):
    fit(_model(), tiny, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epochs" in err and "2/2" in err and "loss=" in err


def test_evaluate_reconstruct_encode(tiny):
    model = _model()
    model.train()
    assert reconstruct(model, tiny, batch_size=64).shape == (200, 784)
    assert encode(model, tiny, batch_size=64).shape == (200, 8)
    assert model.training  # the helpers restore the mode they found
    expected = reconstruction_loss(model(tiny), tiny).item()
    assert evaluate(model, tiny) == pytest.approx(expected, rel=1e-5)


def test_reconstruction_loss_values():
    x = torch.full((2, 4), 0.5)
    assert reconstruction_loss(x + 0.1, x).item() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown loss"):
        reconstruction_loss(x, x, "huber")


def test_set_seed_seeds_torch():
    set_seed(3)
    a = torch.rand(3)
    set_seed(3)
    assert torch.equal(a, torch.rand(3))


def test_history_round_trip():
    h = History([1.0, 0.5], [1.1, 0.6], 2.5)
    assert History(**h.to_dict()) == h


def test_cosine_schedule_anneals_to_zero(tiny, monkeypatch):
    lrs = []
    real_step = torch.optim.Adam.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    fit(
        _model(),
        tiny,
        epochs=2,
        batch_size=50,
        lr=0.01,
        schedule="cosine",
        progress=False,
    )
    assert (
        lrs[0] == pytest.approx(0.01)
        and lrs[-1] < 0.01 * 0.2
        and lrs == sorted(lrs, reverse=True)
    )
    with pytest.raises(ValueError, match="unknown schedule"):
        fit(_model(), tiny, epochs=1, schedule="step", progress=False)


# --- greedy layer-wise pretraining
# -------------------------------------------------------


def test_greedy_pretrain_trains_each_layer_on_the_codes_below(tiny):
    stack, histories = greedy_pretrain(
        [784, 64, 32, 8], tiny, epochs=3, batch_size=50, progress=False, cache=False
    )
    assert [(m.input_size, m.code_size) for m in stack] == [
        (784, 64),
        (64, 32),
        (32, 8),
    ]
    assert [len(h.train_loss) for h in histories] == [3, 3, 3]
    # Layer 1 reconstructs pixels through a sigmoid; the others reconstruct ReLU codes.
    assert [m.config.out for m in stack] == ["sigmoid", "relu", "relu"]
    assert [m.config.code for m in stack] == ["relu", "relu", "identity"]


def test_unrolled_model_equals_the_composition_of_the_stack(tiny):
    stack, _ = greedy_pretrain(
        [784, 64, 32, 8], tiny, epochs=2, batch_size=50, progress=False, cache=False
    )
    stack = [layer.cpu() for layer in stack]  # trained on the test's device
    deep = unroll(stack)
    assert deep.config.sizes == (784, 64, 32, 8)
    h = tiny
    for layer in stack:
        h = layer.encode(h)
    r = h
    for layer in reversed(stack):
        r = layer.decode(r)
    with torch.no_grad():
        torch.testing.assert_close(deep.encode(tiny), h, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(deep(tiny), r, rtol=1e-5, atol=1e-6)


def test_fine_tuning_the_unrolled_model_improves_it(tiny):
    stack, _ = greedy_pretrain(
        [784, 64, 8], tiny, epochs=5, batch_size=50, progress=False, cache=False
    )
    deep = unroll(stack)
    before = evaluate(deep, tiny)
    fit(deep, tiny, epochs=10, batch_size=50, loss="bce", progress=False)
    assert evaluate(deep, tiny) < before


def test_greedy_pretrain_is_reproducible(tiny):
    a, _ = greedy_pretrain(
        [784, 16, 4], tiny, epochs=2, batch_size=50, seed=3, progress=False, cache=False
    )
    b, _ = greedy_pretrain(
        [784, 16, 4], tiny, epochs=2, batch_size=50, seed=3, progress=False, cache=False
    )
    assert all(
        torch.equal(p, q)
        for p, q in zip(unroll(a).parameters(), unroll(b).parameters())
    )


def test_greedy_pretrain_caches_each_layer(tiny, monkeypatch):
    import aebook.cache

    greedy_pretrain(
        [784, 16, 4],
        tiny,
        epochs=2,
        batch_size=50,
        progress=False,
        cache_name="t",
    )
    assert len(list((aebook.cache.cache_dir() / "models").glob("t-layer*.pt"))) == 2
    monkeypatch.setattr(
        aebook.cache, "fit", lambda *a, **k: pytest.fail("retrained a cached layer")
    )
    stack, _ = greedy_pretrain(
        [784, 16, 4],
        tiny,
        epochs=2,
        batch_size=50,
        progress=False,
        cache_name="t",
    )
    assert len(stack) == 2


def test_stacking_bad_arguments(tiny):
    with pytest.raises(ValueError, match="at least"):
        greedy_pretrain([784], tiny, epochs=1)
    with pytest.raises(ValueError, match=r"\(N, 100\)"):
        greedy_pretrain([100, 10], tiny, epochs=1)
    with pytest.raises(ValueError, match="empty"):
        unroll([])
    with pytest.raises(ValueError, match="do not chain"):
        unroll(
            [
                layer_autoencoder(784, 16, True, False),
                layer_autoencoder(32, 4, False, True),
            ]
        )


def _expected_stop(val_loss: list[float], patience: int) -> int:
    """The epoch at which early stopping with ``patience`` halts, replayed from a full
    run's losses."""
    for epoch in range(1, len(val_loss) + 1):
        best = val_loss[:epoch].index(min(val_loss[:epoch])) + 1
        if epoch - best >= patience:
            return epoch
    return len(val_loss)


def test_early_stopping_halts_and_restores_the_best_weights(tiny):
    kw = dict(batch_size=5, lr=1e-2, val_x=tiny[100:], progress=False)
    full = fit(_model(), tiny[:10], epochs=60, **kw)
    stop = _expected_stop(full.val_loss, patience=3)
    assert stop < 60, "the setup must actually trigger early stopping"
    model = _model()
    h = fit(model, tiny[:10], epochs=60, patience=3, **kw)
    assert h.val_loss == full.val_loss[:stop] and h.best_epoch == stop - 3
    # The weights handed back are those of the best epoch: a run of exactly that many
    # epochs.
    short = _model()
    fit(short, tiny[:10], epochs=h.best_epoch, **kw)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), short.state_dict().values())
    )
    assert evaluate(model, tiny[100:]) == pytest.approx(min(h.val_loss))


def test_early_stopping_needs_validation_data_and_a_positive_patience(tiny):
    with pytest.raises(ValueError, match="no val_x"):
        fit(_model(), tiny, epochs=2, patience=3, progress=False)
    with pytest.raises(ValueError, match="patience >= 1"):
        fit(_model(), tiny, epochs=2, patience=0, val_x=tiny, progress=False)
    assert (
        History().best_epoch == 0 and History(val_loss=[3.0, 1.0, 2.0]).best_epoch == 2
    )


def test_adam_is_fused_on_the_cpu_only_where_pytorch_has_the_kernel():
    from aebook.training import adam

    assert adam(_model(), lr=1e-3).defaults["fused"] is True
    # a device without one: the default
    assert adam(_model().to("meta"), lr=1e-3).defaults["fused"] is None


def test_progress_bar_counts_epochs_and_an_early_stop_ends_complete(tiny, monkeypatch):
    import io

    import tqdm.auto

    bars = []

    class Spy(tqdm.auto.tqdm):
        def __init__(self, *a, **k):
            super().__init__(*a, **k, disable=False, file=io.StringIO())
            bars.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    fit(_model(), tiny, epochs=4, batch_size=50, val_x=tiny[:50], progress=True)
    h = fit(
        _model(),
        tiny[:10],
        epochs=60,
        batch_size=5,
        lr=1e-2,
        val_x=tiny[100:],
        patience=3,
        progress=True,
    )
    assert bars[0].n == bars[0].total == 4
    # stopped early, drawn as finished
    assert bars[1].n == bars[1].total == len(h.val_loss) < 60
    assert "val" in bars[1].postfix


def test_batched_concatenates_in_order_and_restores_the_mode_also_on_error():
    from aebook.training import batched

    torch.manual_seed(0)
    model = Autoencoder([6, 3]).train()
    x = torch.rand(10, 6)
    seen_modes = []

    def codes(m, b):
        seen_modes.append(m.training)
        return m.encode(b)

    with torch.no_grad():
        out = batched(model, x, codes, 4)
        assert out.shape == (10, 3) and torch.allclose(out, model.eval().encode(x))
    # batches of 4, 4 and 2, each in eval mode
    assert seen_modes == [False, False, False]
    model.train()

    def fails(m, b):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        batched(model, x, fails, 4)
    assert model.training  # restored although fn raised


def test_resolve_device_flushes_denormals_for_the_worker_threads_too():
    # In a fresh process: a denormal survives a product until resolve_device, then it is
    # zero, in the main thread and in a product large enough to run on worker threads.
    import subprocess
    import sys

    code = (
        "import torch; from aebook.training import resolve_device; "
        "x = torch.full((1,), 1e-39); assert (x * 1.0).item() > 0; "
        "resolve_device('cpu'); assert (x * 1.0).item() == 0; "
        "big = torch.full((4_000_000,), 1e-39); assert (big * 1.0).max().item() == 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
