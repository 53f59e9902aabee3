import pytest
import torch

from aebook.models import Autoencoder
from aebook.penalties import (
    Contractive,
    KLSparsity,
    L1Sparsity,
    encoder_jacobian_norm_sq,
    jacobian_norm_sq,
    kl_bernoulli,
    sigmoid_jacobian_norm_sq,
)
from aebook.training import fit, set_seed


def _sigmoid_ae(k=16):
    set_seed(0)
    return Autoencoder([784, k], code="sigmoid")


def test_closed_form_and_autograd_jacobians_agree():
    model = _sigmoid_ae()
    x = torch.rand(8, 784)
    h = model.encode(x)
    closed = sigmoid_jacobian_norm_sq(model.encoder[0].weight, h)
    auto = jacobian_norm_sq(model.encoder, x)
    torch.testing.assert_close(closed, auto, rtol=1e-4, atol=1e-7)
    # And both against the definition, one column of the Jacobian at a time.
    jac = torch.autograd.functional.jacobian(lambda v: model.encoder(v[None])[0], x[0])
    assert auto[0].item() == pytest.approx(jac.pow(2).sum().item(), rel=1e-4)


def test_autograd_jacobian_of_a_deep_encoder_matches_finite_differences():
    set_seed(0)
    model = Autoencoder([784, 32, 4], hidden="tanh")
    x = torch.rand(1, 784, dtype=torch.float64)
    model = model.double()
    eps = 1e-6
    basis = torch.eye(784, dtype=torch.float64)
    cols = [
        (model.encoder(x + eps * e) - model.encoder(x - eps * e)) / (2 * eps)
        for e in basis
    ]
    fd = torch.cat(cols).pow(2).sum()
    assert jacobian_norm_sq(model.encoder, x).item() == pytest.approx(
        fd.item(), rel=1e-5
    )


def test_contractive_penalty_picks_its_method_and_trains():
    model = _sigmoid_ae()
    x = torch.rand(8, 784)
    h = model.encode(x)
    a = Contractive(0.1, "closed-form")(model, x, h)
    b = Contractive(0.1, "autograd")(model, x, h)
    assert a.item() == pytest.approx(b.item(), rel=1e-4) and a.item() > 0
    b.backward()  # differentiable with respect to the parameters
    assert (
        model.encoder[0].weight.grad is not None
        and model.encoder[0].weight.grad.abs().sum() > 0
    )
    with pytest.raises(ValueError, match="closed form needs"):
        encoder_jacobian_norm_sq(
            Autoencoder([784, 8, 4]).encoder, x, method="closed-form"
        )


def test_contractive_training_shrinks_the_jacobian():
    x = torch.rand(300, 784, generator=torch.Generator().manual_seed(0))
    plain, cae = _sigmoid_ae(), _sigmoid_ae()
    fit(plain, x, epochs=5, batch_size=50, progress=False)
    fit(cae, x, epochs=5, batch_size=50, penalty=Contractive(1.0), progress=False)
    with torch.no_grad():
        j_plain = encoder_jacobian_norm_sq(plain.encoder, x).mean()
        j_cae = encoder_jacobian_norm_sq(cae.encoder, x).mean()
    assert j_cae < 0.5 * j_plain


def test_l1_penalty_value():
    h = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 3.0]])
    assert L1Sparsity(0.5)(None, None, h).item() == pytest.approx(0.5 * (3 + 3) / 2)


def test_kl_penalty_is_zero_at_the_target_and_grows_away_from_it():
    h = torch.full((10, 4), 0.05)
    assert KLSparsity(3.0, 0.05)(None, None, h).item() == pytest.approx(0.0, abs=1e-6)
    far = KLSparsity(3.0, 0.05)(None, None, torch.full((10, 4), 0.5)).item()
    near = KLSparsity(3.0, 0.05)(None, None, torch.full((10, 4), 0.1)).item()
    assert far > near > 0
    assert kl_bernoulli(0.05, torch.tensor([0.0, 1.0])).isfinite().all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: L1Sparsity(-1e-3),
        lambda: KLSparsity(-1.0),
        lambda: Contractive(-0.1),
        lambda: Contractive(float("nan")),
    ],
)
def test_negative_weights_are_rejected(make):
    with pytest.raises(ValueError, match=">= 0"):
        make()


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.2, 1.5])
def test_rho_must_lie_in_the_open_unit_interval(rho):
    with pytest.raises(ValueError, match=r"rho .* \(0, 1\)"):
        KLSparsity(1.0, rho)


def test_unknown_contractive_method():
    with pytest.raises(ValueError, match="method"):
        Contractive(0.1, "numeric")


def test_penalties_describe_themselves_to_the_cache():
    from aebook.cache import describe

    d = describe(KLSparsity(3.0))
    assert {k: d[k] for k in ("type", "beta", "rho")} == {
        "type": "KLSparsity",
        "beta": 3.0,
        "rho": 0.05,
    }
    # the class's code
    assert (
        d["code"]
        == describe(KLSparsity(0.5))["code"]
        != describe(L1Sparsity(0.5))["code"]
    )
    assert describe(Contractive(0.1)) != describe(Contractive(0.2))
