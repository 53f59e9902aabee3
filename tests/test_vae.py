"""The VAE: the KL term, the reparameterised sample, the ELBO and the
importance-weighted bound, each against a computation that does not share its code."""

import math

import pytest
import torch

from aebook.metrics import (
    bernoulli_log_likelihood,
    elbo,
    importance_weighted_log_likelihood,
)
from aebook.models import VAE, reparameterise
from aebook.penalties import GaussianKL, gaussian_kl, gaussian_kl_per_unit
from aebook.training import fit, set_seed

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def test_kl_matches_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.tensor([[0.5, -1.0, 0.0]]), torch.tensor([[0.2, -1.5, 0.7]])
    h = (
        mu
        + (0.5 * logvar).exp()
        * torch.randn(400_000, 3, generator=g, dtype=torch.float64).float()
    )
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(h).sum(1)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(h).sum(1)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(
        (q - p).mean().item(), rel=0.01
    )
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0  # q = p
    # unit by unit, against the same draws: each unit's own Monte Carlo estimate
    per_unit = gaussian_kl_per_unit(mu, logvar)
    q_j = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(h)
    p_j = torch.distributions.Normal(0.0, 1.0).log_prob(h)
    assert per_unit.shape == (1, 3) and torch.allclose(
        per_unit, (q_j - p_j).mean(0, keepdim=True), rtol=0.02, atol=2e-3
    )
    assert torch.allclose(per_unit.sum(1), gaussian_kl(mu, logvar))


def test_reparameterised_sample_has_the_right_moments_and_gradients():
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25)], requires_grad=True)
    h = reparameterise(
        mu.expand(200_000, 2),
        logvar.expand(200_000, 2),
        torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(h.mean(0), mu.detach(), atol=0.01, rtol=0)
    torch.testing.assert_close(h.var(0), torch.tensor([1.0, 0.25]), atol=0.01, rtol=0)
    h.sum().backward()
    assert mu.grad is not None and logvar.grad is not None and mu.grad.abs().min() > 0


def _tiny_vae() -> VAE:
    """D = 3 pixels, k = 1 latent, no hidden layer: small enough to integrate over h on
    a grid."""
    set_seed(0)
    model = VAE([3, 1])
    with torch.no_grad():
        model.encoder[0].weight.copy_(
            torch.tensor([[0.8, -0.5, 0.3], [0.2, 0.1, -0.4]])
        )
        model.encoder[0].bias.copy_(torch.tensor([0.1, -1.0]))
        model.decoder[0].weight.copy_(torch.tensor([[1.5], [-2.0], [0.7]]))
        model.decoder[0].bias.copy_(torch.tensor([0.2, 0.1, -0.3]))
    return model.eval()


def _grid(x: torch.Tensor, model: VAE):
    """On a fine grid of h: log p(x | h), log p(h), q(h | x) for one image x (3,)."""
    h = torch.linspace(-12, 12, 200_001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        means = model.decode(h.float()).double()
        mu, logvar = (t.double() for t in model.posterior(x[None]))
    log_lik = bernoulli_log_likelihood(x.double().expand(len(h), 3), means)
    log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(h[:, 0])
    q = (
        torch.distributions.Normal(mu[0, 0], (0.5 * logvar[0, 0]).exp())
        .log_prob(h[:, 0])
        .exp()
    )
    return h[1, 0] - h[0, 0], log_lik, log_prior, q, gaussian_kl(mu, logvar)[0]


def test_elbo_and_importance_weighted_bound_against_numerical_integration():
    model = _tiny_vae()
    x = torch.tensor([[1.0, 0.0, 0.6]])
    dh, log_lik, log_prior, q, kl = _grid(x[0], model)
    exact_recon = (q * log_lik).sum() * dh  # E_q[log p(x | h)]
    # log of the integral of p(x | h) p(h)
    log_px = torch.logsumexp(log_lik + log_prior, 0) + math.log(dh)
    recon, kl_est = elbo(
        model, x, samples=20_000, generator=torch.Generator().manual_seed(0)
    )
    assert kl_est.item() == pytest.approx(kl.item(), rel=1e-5)
    assert recon.item() == pytest.approx(exact_recon.item(), abs=0.02)
    iw = importance_weighted_log_likelihood(
        model, x, samples=5_000, generator=torch.Generator().manual_seed(0)
    )
    elbo_exact = (exact_recon - kl).item()
    # the ELBO < the IWAE estimate <= log p(x)
    assert elbo_exact < iw.item() <= log_px.item() + 0.01
    assert iw.item() == pytest.approx(log_px.item(), abs=0.02)


def test_vae_encodes_a_sample_in_training_and_the_mean_in_eval():
    model = VAE([784, 16, 4])
    x = torch.rand(5, 784)
    mu, _ = model.posterior(x)
    model.train()
    assert not torch.equal(model.encode(x), model.encode(x))
    model.eval()
    assert (
        torch.equal(model.encode(x), mu)
        and model(x).shape == (5, 784)
        and model.code_size == 4
    )


def test_fit_objective_with_the_kl_penalty_is_minus_the_elbo_per_pixel():
    model = VAE([784, 8, 2]).train()
    x = torch.rand(6, 784)
    torch.manual_seed(3)
    h = model.encode(x)
    objective = torch.nn.functional.binary_cross_entropy(
        model.decode(h), x
    ) + GaussianKL(1.0)(model, x, h)
    mu, logvar = model.posterior(x)
    minus_elbo = -(
        bernoulli_log_likelihood(x, model.decode(h)) - gaussian_kl(mu, logvar)
    ).mean()
    assert objective.item() == pytest.approx(minus_elbo.item() / 784, rel=1e-5)


def test_vae_trains_through_fit_deterministically(tiny):
    losses = []
    for _ in range(2):
        set_seed(0)
        model = VAE([784, 32, 4])
        losses.append(
            fit(
                model,
                tiny,
                epochs=3,
                batch_size=50,
                loss="bce",
                penalty=GaussianKL(1.0),
                progress=False,
                device="cpu",
            ).train_loss
        )
    assert losses[0] == losses[1] and losses[0][-1] < losses[0][0]


def test_kl_penalty_says_what_it_needs():
    from aebook.models import Autoencoder

    with pytest.raises(TypeError, match="posterior"):
        GaussianKL(1.0)(Autoencoder([784, 4]), torch.rand(2, 784), torch.rand(2, 4))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        GaussianKL(-1.0)


def test_vae_config_round_trip_and_bad_specs():
    model = VAE([784, 64, 2], hidden="tanh")
    assert VAE.from_config(model.config.to_dict()).config == model.config
    with pytest.raises(ValueError, match="sizes"):
        VAE([784])
    with pytest.raises(ValueError, match="unknown hidden activation"):
        VAE([784, 2], hidden="swish")
