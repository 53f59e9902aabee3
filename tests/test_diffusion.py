"""Chapter 11's package: the noise schedule, the exact score of a noised mixture, the
noise-prediction objective through `fit`, the samplers and the Fréchet distance, each
against a hand computation or a computation that does not share its code."""

import math

import pytest
import torch

from aebook.cache import train_or_load
from aebook.diffusion import (
    Denoiser,
    NoisePrediction,
    Schedule,
    langevin,
    level,
    mixture_sample,
    mixture_score,
    noise_estimate,
    sample,
    score,
)
from aebook.metrics import frechet_distance, judge_features, train_classifier
from aebook.training import fit

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def test_schedule_by_hand():
    s = Schedule(4)
    # abar at s = 1/4, 2/4, 3/4, 1: exp(-(0.1 s + 9.95 s^2))
    abar = torch.tensor([0.52368, 0.079064, 0.0034414, 4.3186e-5], dtype=torch.float64)
    assert torch.allclose(s.alpha_bar.double(), abar, rtol=2e-3)
    betas = s.betas
    assert torch.allclose(torch.cumprod(1 - betas, 0), s.alpha_bar.double(), rtol=1e-5)
    assert betas.min() > 0 and betas.max() < 1
    # T = 1000 gives about Ho et al.'s 1e-4 .. 0.02
    big = Schedule(1000)
    assert big.betas[0].item() == pytest.approx(1e-4, rel=0.15)
    assert big.betas[-1].item() == pytest.approx(0.02, rel=0.02)
    with pytest.raises(ValueError, match="at least 2 steps"):
        Schedule(1)
    with pytest.raises(ValueError, match="whole number"):
        Schedule(2.5)


def test_noised_marginals_have_the_schedules_mean_and_variance():
    """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps: for x0 = 3 (a constant) its mean is
    3 sqrt(abar) and its variance 1 - abar."""
    s = Schedule(10)
    g = torch.Generator().manual_seed(0)
    n, t = 200_000, 6
    x0 = torch.full((n, 1), 3.0)
    xt = s.noised(x0, torch.full((n,), t), torch.randn(n, 1, generator=g))
    ab = s.alpha_bar[t].item()
    assert xt.mean().item() == pytest.approx(3 * math.sqrt(ab), abs=0.01)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.01)


def test_mixture_score_by_hand():
    """One component: the score of N(sqrt(ab) mu, v I) is (sqrt(ab) mu - x) / v; two
    equal components halfway between: the pulls cancel."""
    mu = torch.tensor([[1.0, -2.0]])
    x = torch.tensor([[0.5, 0.5]])
    ab, std = 0.64, 0.5
    v = ab * std**2 + 1 - ab  # 0.52
    want = (0.8 * mu - x) / v
    got = mixture_score(x, mu, std, torch.ones(1), ab)
    assert torch.allclose(got, want)
    two = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    mid = mixture_score(torch.zeros(1, 2), two, 0.3, torch.tensor([0.5, 0.5]))
    assert torch.allclose(mid, torch.zeros(1, 2), atol=1e-6)


def test_mixture_score_is_the_gradient_of_the_log_density():
    means = torch.tensor([[0.0, 2.0], [1.5, -1.0], [-2.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    std, ab = 0.4, 0.7
    x = torch.tensor([[0.3, 0.1], [-1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    v = ab * std**2 + 1 - ab
    comp = torch.distributions.MultivariateNormal(
        math.sqrt(ab) * means, v * torch.eye(2, dtype=torch.float64)
    )
    log_q = torch.logsumexp(comp.log_prob(x.unsqueeze(1)) + w.log(), dim=1).sum()
    (grad,) = torch.autograd.grad(log_q, x)
    assert torch.allclose(mixture_score(x.detach(), means, std, w, ab), grad)


def test_mixture_sample_draws_the_weights():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    x, k = mixture_sample(
        20_000, means, 0.1, torch.tensor([0.25, 0.75]), torch.Generator().manual_seed(0)
    )
    assert x.shape == (20_000, 2) and k.float().mean().item() == pytest.approx(
        0.75, abs=0.01
    )
    assert (x - means[k]).std().item() == pytest.approx(0.1, rel=0.02)


def test_denoiser_shapes_embedding_and_bad_specs():
    torch.manual_seed(0)
    d = Denoiser(3, (16,), time_dim=8)
    assert d(torch.randn(5, 3), torch.rand(5)).shape == (5, 3)
    e = d.embed(torch.tensor([0.0, 0.5]))
    assert e.shape == (2, 8) and torch.allclose(
        e[0], torch.tensor([0.0] * 4 + [1.0] * 4)
    )
    c = Denoiser(3, (16,), time_dim=8, classes=4)
    y = torch.tensor([0, 4])  # 4: no class
    x, s = torch.randn(2, 3), torch.rand(2)
    assert torch.allclose(c(x, s), c(x, s, torch.tensor([4, 4])))
    assert not torch.allclose(c(x, s, y), c(x, s))
    for bad in (dict(dim=0), dict(dim=3, time_dim=7), dict(dim=3, classes=-1)):
        with pytest.raises(ValueError):
            Denoiser(**bad)


def test_fit_objective_hook_trains_a_denoiser_to_the_optimal_noise_prediction():
    """For data at one point x0 = 1.5, the best eps-prediction from x_t is known:
    eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar). The objective hook trains to it."""
    s = Schedule(10)
    data = torch.full((2000, 1), 1.5)
    torch.manual_seed(0)
    model = Denoiser(1, (64, 64), time_dim=16)
    h = fit(
        model,
        data,
        epochs=60,
        batch_size=200,
        lr=3e-3,
        objective=NoisePrediction(s),
        progress=False,
    )
    assert h.train_loss[-1] < 0.05 * h.train_loss[0]
    t = 5
    ab = s.alpha_bar[t]
    xt = torch.linspace(-1, 2.5, 9).unsqueeze(1)
    with torch.no_grad():
        got = model.cpu()(xt, level(torch.full((9,), t), s))
    want = (xt - ab.sqrt() * 1.5) / (1 - ab).sqrt()
    assert torch.allclose(got, want, atol=0.1)
    # and Tweedie turns it into the score of N(sqrt(ab) 1.5, 1 - ab)
    with torch.no_grad():
        sc = score(model, xt, t, s)
    assert torch.allclose(sc, -(xt - ab.sqrt() * 1.5) / (1 - ab), atol=0.15)


def test_objective_refuses_the_reconstruction_hooks():
    data = torch.rand(8, 2)
    model = Denoiser(2, (4,), time_dim=4)
    objective = NoisePrediction(Schedule(4))
    with pytest.raises(ValueError, match="cannot be combined with penalty"):
        fit(
            model,
            data,
            epochs=1,
            objective=objective,
            penalty=lambda m, x, h: h.sum(),
            progress=False,
        )
    with pytest.raises(ValueError, match="val_x"):
        fit(model, data, epochs=1, objective=objective, val_x=data, progress=False)
    with pytest.raises(ValueError, match="objective must return a scalar"):
        fit(
            model,
            data,
            epochs=1,
            objective=lambda m, x, g: x.sum(1),
            progress=False,
        )


def test_single_step_and_label_drop():
    s = Schedule(10)
    seen = []

    class Spy(Denoiser):
        def forward(self, x, lv, y=None):
            seen.append((lv.clone(), None if y is None else y.clone()))
            return super().forward(x, lv, y)

    torch.manual_seed(0)
    spy = Spy(2, (4,), time_dim=4, classes=3)
    g = torch.Generator().manual_seed(0)
    batch = torch.cat([torch.randn(1000, 2), torch.zeros(1000, 1)], dim=1)  # class 0
    NoisePrediction(s, step=3)(spy, batch, g)
    NoisePrediction(s, label_drop=0.3)(spy, batch, g)
    (lv1, y1), (lv2, y2) = seen
    assert torch.all(lv1 == 0.4) and torch.all(y1 == 0)
    assert (y2 == 3).float().mean().item() == pytest.approx(0.3, abs=0.05)
    assert lv2.min() >= 0.1 and lv2.max() <= 1.0 and len(lv2.unique()) == 10


def test_objective_goes_through_the_cache(tmp_path):
    s = Schedule(5)
    data = torch.randn(64, 2)

    def run():
        torch.manual_seed(0)
        return train_or_load(
            Denoiser(2, (8,), time_dim=4),
            data,
            name="d",
            directory=tmp_path,
            epochs=2,
            objective=NoisePrediction(s),
            progress=False,
        )

    a, ha = run()
    b, hb = run()
    assert ha.train_loss == hb.train_loss and len(list(tmp_path.iterdir())) == 1
    torch.manual_seed(0)
    other = train_or_load(
        Denoiser(2, (8,), time_dim=4),
        data,
        name="d",
        directory=tmp_path,
        epochs=2,
        objective=NoisePrediction(s, step=2),
        progress=False,
    )
    assert len(list(tmp_path.iterdir())) == 2 and other[1].train_loss != ha.train_loss


class _Exact(torch.nn.Module):
    """The exact eps-prediction of a 1-D Gaussian N(m, c^2): eps = sqrt(1 - ab) (x -
    sqrt(ab) m) / (ab c^2 + 1 - ab)."""

    def __init__(self, s, m, c):
        super().__init__()
        self.s, self.m, self.c = s, m, c
        self.w = torch.nn.Parameter(torch.zeros(()))  # sample() reads the device
        self.config = type("C", (), {"dim": 1, "classes": 0, "predicts": "eps"})

    def forward(self, x, lv, y=None):
        t = (lv * self.s.steps).round().long() - 1
        ab = self.s.alpha_bar[t].unsqueeze(1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.m) / (ab * self.c**2 + 1 - ab)


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_samplers_with_the_exact_denoiser_draw_the_data(eta):
    """With the exact noise prediction for N(2, 0.5^2) data, both samplers land on the
    data's mean and spread; over fewer steps they under-disperse (the discretisation
    error), less the more steps they take."""
    s = Schedule(200)
    exact = _Exact(s, 2.0, 0.5)

    def spread(steps):
        x = sample(
            exact,
            s,
            20_000,
            generator=torch.Generator().manual_seed(0),
            eta=eta,
            steps=steps,
        )
        assert x.mean().item() == pytest.approx(2.0, abs=0.03)
        return x.std().item()

    errors = [abs(spread(k) - 0.5) for k in (10, 50, 200)]
    assert errors[-1] < 0.025 and errors[0] > errors[1] > errors[2]
    _, snaps = sample(exact, s, 5, generator=torch.Generator().manual_seed(0), keep=4)
    assert len(snaps) == 5 and snaps[-1].shape == (5, 1)
    with pytest.raises(ValueError, match="steps"):
        sample(exact, s, 5, generator=torch.Generator(), steps=201)


def test_langevin_samples_a_gaussian_from_its_score():
    g = torch.Generator().manual_seed(0)
    x = langevin(
        lambda z: -(z - 1.0) / 0.25,
        torch.zeros(20_000, 1),
        step_size=0.01,
        n_steps=500,
        generator=g,
    )
    assert x.mean().item() == pytest.approx(1.0, abs=0.02)
    assert x.std().item() == pytest.approx(0.5, rel=0.05)


def test_frechet_distance_of_known_gaussians():
    """Diagonal covariances: FD = |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2."""
    g = torch.Generator().manual_seed(0)
    sd_a, sd_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([2.0, 1.0, 0.5])
    mu_b = torch.tensor([1.0, 0.0, -2.0])
    a = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * sd_a
    b = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * sd_b + mu_b
    want = 5.0 + 1.0 + 1.0 + 0.0
    assert frechet_distance(a, b) == pytest.approx(want, rel=0.01)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # a rotated covariance: FD of N(0, C) and N(0, I) is Tr(C) + 2 - 2 Tr(C^1/2)
    c = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)  # eigenvalues 3, 1
    x = (
        torch.randn(200_000, 2, generator=g, dtype=torch.float64)
        @ torch.linalg.cholesky(c).T
    )
    y = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    assert frechet_distance(x, y) == pytest.approx(4 + 2 - 2 * (3**0.5 + 1), abs=0.02)
    with pytest.raises(ValueError, match="two sets"):
        frechet_distance(a[:, :2], b)


def test_judge_features_are_the_hidden_layer():
    x, y = torch.rand(40, 6), torch.arange(40) % 2
    judge = train_classifier(x, y, hidden=5, epochs=1)
    f = judge_features(judge, x)
    assert f.shape == (40, 5) and (f >= 0).all()
    assert torch.allclose(judge[-1](f), judge(x))


def test_frechet_distance_of_non_commuting_covariances_matches_scipy():
    """Two covariances that do not commute: the trace term against scipy's sqrtm."""
    from scipy.linalg import sqrtm

    g = torch.Generator().manual_seed(1)
    a = torch.randn(3000, 3, generator=g, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]], dtype=torch.float64
    )
    b = torch.randn(3000, 3, generator=g, dtype=torch.float64) @ torch.tensor(
        [[2.0, 0.0, 0.0], [0.7, 0.5, 0.0], [0.0, 0.4, 1.5]], dtype=torch.float64
    )
    ca, cb = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    assert not torch.allclose(
        torch.from_numpy(ca @ cb), torch.from_numpy(cb @ ca), atol=1e-3
    )
    mean = (a.mean(0) - b.mean(0)).pow(2).sum().item()
    want = mean + ca.trace() + cb.trace() - 2 * sqrtm(ca @ cb).real.trace()
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-8)


def test_a_denoiser_that_predicts_x0_gives_full_rank_noise_estimates():
    """An eps-predicting network's output spans at most its last hidden width; one that
    predicts x0 gives eps_hat = (x_t - sqrt(abar) x0_hat) / sqrt(1 - abar), which
    keeps x_t's every direction. Its loss is on x0."""
    torch.manual_seed(0)
    narrow = Denoiser(8, (3,), time_dim=4)
    wide = Denoiser(8, (3,), time_dim=4, predicts="x0")
    x, s, ab = torch.randn(50, 8), torch.full((50,), 0.5), torch.tensor(0.3)
    with torch.no_grad():
        rank_eps = torch.linalg.matrix_rank(noise_estimate(narrow, x, s, ab))
        rank_x0 = torch.linalg.matrix_rank(noise_estimate(wide, x, s, ab))
        want = (x - ab.sqrt() * wide(x, s)) / (1 - ab).sqrt()
    assert rank_eps <= 4 and rank_x0 == 8
    assert torch.allclose(noise_estimate(wide, x, s, ab), want)
    # the objective's target follows what the model predicts
    sched = Schedule(10)
    data = torch.full((200, 8), 0.7)
    torch.manual_seed(0)
    model = Denoiser(8, (32,), time_dim=8, predicts="x0")
    fit(
        model,
        data,
        epochs=80,
        batch_size=50,
        lr=1e-2,
        objective=NoisePrediction(sched),
        progress=False,
    )
    with torch.no_grad():
        x0_hat = model.cpu()(torch.randn(5, 8), torch.full((5,), 0.3))
    assert torch.allclose(x0_hat, torch.full((5, 8), 0.7), atol=0.05)
    with pytest.raises(ValueError, match="predicts"):
        Denoiser(8, predicts="v")
