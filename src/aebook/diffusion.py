"""Diffusion models: the noise schedule, a time-conditioned denoiser, its training
objective, the samplers, and the exact score of a noised Gaussian mixture (a toy's
ground truth).

The forward process adds Gaussian noise in ``T`` steps (Sohl-Dickstein et al. 2015; Ho
et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. A network trained to
predict eps from (x_t, t) is a denoising autoencoder at every noise level at once, and
by Tweedie's formula it gives the score: grad log q_t(x_t) = -eps_hat / sqrt(1 -
abar_t) (Vincent 2011).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import draws
from .models import Spec, _whole, mlp


@dataclass(frozen=True)
class Schedule:
    """The variance-preserving noise schedule of Song et al. (2021), beta(s) rising
    linearly from 0.1 to 20 over s in [0, 1], cut into T steps: abar_t = exp(-(0.1 s +
    9.95 s^2)) at s = (t + 1) / T. Every T spans the same noise, ending at abar about
    4.3e-5; at T = 1000 it is Ho et al.'s linear schedule (beta from 1e-4 to 0.02), and
    unlike theirs scaled to few steps, every beta stays below 1."""

    steps: int = 100  # T

    def __post_init__(self) -> None:
        if _whole(self.steps, "number of steps") < 2:
            raise ValueError(f"a schedule needs at least 2 steps, got {self.steps}")

    @property
    def alpha_bar(self) -> torch.Tensor:
        """(T,) abar_t: the share of x_0's variance left at step t, float32."""
        s = torch.arange(1, self.steps + 1, dtype=torch.float64) / self.steps
        return torch.exp(-(0.1 * s + 9.95 * s**2)).float()

    @property
    def betas(self) -> torch.Tensor:
        """(T,) beta_t = 1 - abar_t / abar_{t-1}: the variance step t adds."""
        ab = self.alpha_bar.double()
        return 1 - ab / torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])

    def noised(
        self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: x0, eps (B, D), t (B,)
        integer steps -> (B, D)."""
        ab = self.alpha_bar.to(x0.device)[t].unsqueeze(1)  # (B, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


@dataclass(frozen=True)
class DenoiserConfig(Spec):
    """The plain spec a `Denoiser` is built from (and cached under)."""

    dim: int  # D, the size of x (2 for the toy, a code's size, 784 for pixels)
    hidden: tuple[int, ...] = (256, 256)  # widths of the hidden layers (SiLU)
    time_dim: int = 32  # size of the sinusoidal embedding of the noise level
    classes: int = 0  # > 0: also conditioned on a class, with one more "no class"
    # what the network outputs: the noise eps, or the clean x_0 (then eps_hat = (x_t -
    # sqrt(abar) x0_hat) / sqrt(1 - abar) keeps x_t's every direction, which a narrow
    # network's eps cannot: its output spans only as many directions as its last
    # hidden layer is wide)
    predicts: str = "eps"

    def __post_init__(self) -> None:
        widths = tuple(_whole(w, "hidden width") for w in self.hidden)
        object.__setattr__(self, "hidden", widths)
        for name in ("dim", "time_dim"):
            if _whole(getattr(self, name), name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.predicts not in ("eps", "x0"):
            raise ValueError(f"predicts must be 'eps' or 'x0', got {self.predicts!r}")
        if _whole(self.classes, "number of classes") < 0 or self.time_dim % 2:
            raise ValueError(
                f"need classes >= 0 and an even time_dim, got {self.classes}, "
                f"{self.time_dim}"
            )


class Denoiser(nn.Module):
    """An MLP eps_theta(x_t, s[, y]) -> (B, D): the noise in x_t (or, with
    ``predicts="x0"``, the clean x_0; `noise_estimate` gives eps either way), from x_t
    and the noise level s in [0, 1] (a step t as (t + 1) / T), as a sinusoidal embedding
    concatenated to the input (Vaswani et al.'s, as in Ho et al.). With ``classes``, a
    learned class embedding is added to it; class ``classes`` means "no class"
    (classifier-free guidance, Ho & Salimans 2022)."""

    config_type = DenoiserConfig

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...] | list[int] = (256, 256),
        time_dim: int = 32,
        classes: int = 0,
        predicts: str = "eps",
    ) -> None:
        super().__init__()
        self.config = c = DenoiserConfig(
            dim, tuple(hidden), time_dim, classes, predicts
        )
        self.net = mlp((c.dim + c.time_dim, *c.hidden, c.dim), "silu", "identity")
        self.label = nn.Embedding(c.classes + 1, c.time_dim) if c.classes else None
        half = c.time_dim // 2
        # frequencies from 1 to 1/1000 of a unit of 1000 * s
        freqs = torch.exp(-math.log(1000.0) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def embed(self, s: torch.Tensor) -> torch.Tensor:
        """(B,) noise levels in [0, 1] -> (B, time_dim) sines and cosines."""
        angle = 1000.0 * s.float().unsqueeze(1) * self.freqs
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, D), s (B,) in [0, 1], y (B,) classes (``classes`` for none) ->
        (B, D)."""
        e = self.embed(s)
        if self.label is not None:
            y = (
                torch.full_like(s, self.config.classes, dtype=torch.long)
                if y is None
                else y
            )
            e = e + self.label(y)
        return self.net(torch.cat([x, e], dim=1))


def noise_estimate(
    model: Denoiser,
    x: torch.Tensor,
    s: torch.Tensor,
    alpha_bar: torch.Tensor,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """eps_hat (B, D) at x_t = x (B, D), level s (B,) and abar there (0-d or (B, 1)):
    the network's output, or computed from its x0_hat."""
    out = model(x, s, y)
    if model.config.predicts == "eps":
        return out
    return (x - alpha_bar.sqrt() * out) / (1 - alpha_bar).sqrt()


def level(t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Integer steps t (B,) in 0..T-1 -> the denoiser's noise level s = (t + 1) / T."""
    return (t.float() + 1) / schedule.steps


@dataclass(frozen=True)
class NoisePrediction:
    """Ho et al.'s simple loss, a `fit` objective: E_{t, eps} ||eps - eps_theta(x_t,
    t)||^2 with t uniform over the steps, a denoising autoencoder's loss summed over
    every noise level (for a denoiser that predicts x_0, ||x_0 - x0_theta||^2
    instead). ``step``: train at that one step only (a single-noise denoiser,
    as in chapter 5). With a class-conditional denoiser the batch's last column holds
    the class, which is dropped to "no class" with probability ``label_drop``."""

    schedule: Schedule
    step: int | None = None
    label_drop: float = 0.0

    def __call__(
        self, model: Denoiser, x: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        y = None
        if model.config.classes:
            x, y = x[:, :-1], x[:, -1].long()
            drop = draws.rand((len(y),), gen, x) < self.label_drop
            y = y.masked_fill(drop, model.config.classes)
        shape = (len(x),)
        t = (
            draws.randint(0, self.schedule.steps, shape, gen, x)
            if self.step is None
            else torch.full(shape, self.step, device=x.device)
        )
        eps = draws.randn(x.shape, gen, x)
        x_t = self.schedule.noised(x, t, eps)
        target = eps if model.config.predicts == "eps" else x
        return F.mse_loss(model(x_t, level(t, self.schedule), y), target)


def score(model: Denoiser, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """Tweedie: the model's score of q_t at x (B, D), -eps_hat / sqrt(1 - abar_t)."""
    tt = torch.full((len(x),), t, device=x.device)
    ab = schedule.alpha_bar[t].to(x.device)
    return -noise_estimate(model, x, level(tt, schedule), ab) / (1 - ab).sqrt()


@torch.no_grad()
def sample(
    model: Denoiser,
    schedule: Schedule,
    n: int,
    *,
    generator: torch.Generator,
    steps: int | None = None,
    eta: float = 1.0,
    labels: torch.Tensor | None = None,
    guidance: float = 0.0,
    keep: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """n samples (n, D), from x_T ~ N(0, I) down to x_0, on the CPU.

    Song et al.'s generalised sampler (DDIM) over ``steps`` of the T steps (all by
    default), evenly spaced: ``eta=1`` is the ancestral sampler of Ho et al. (with all T
    steps, exactly theirs with the posterior's variance), ``eta=0`` the deterministic
    DDIM, which follows the probability-flow ODE. ``labels`` (n,) and ``guidance`` w
    steer a class-conditional denoiser: eps = (1 + w) eps(x, y) - w eps(x, none).
    ``keep`` > 0 also returns ``keep`` + 1 snapshots of x, from the noise to the
    samples, evenly spaced over the steps."""
    steps = schedule.steps if steps is None else _whole(steps, "number of steps")
    if (
        not 1 <= steps <= schedule.steps
        or n < 1
        or not 0 <= eta <= 1
        or not 0 <= keep <= steps
    ):
        raise ValueError(
            f"need 1 <= steps <= {schedule.steps}, n >= 1, eta in [0, 1] and 0 <= keep "
            f"<= steps; got steps={steps}, n={n}, eta={eta}, keep={keep}"
        )
    dev = next(model.parameters()).device
    model.eval()
    ab = schedule.alpha_bar.to(dev)
    # the steps visited, T-1 down to 0, evenly spaced
    ts = torch.linspace(schedule.steps - 1, 0, steps).round().long().tolist()
    x = torch.randn(n, model.config.dim, generator=generator).to(dev)
    none = model.config.classes
    snaps = [x.cpu()]
    for i, t in enumerate(ts):
        s = level(torch.full((n,), t, device=dev), schedule)
        a_t = ab[t]
        if labels is None:
            eps = noise_estimate(model, x, s, a_t)
        else:
            y = labels.to(dev)
            eps = (1 + guidance) * noise_estimate(model, x, s, a_t, y) - (
                guidance * noise_estimate(model, x, s, a_t, torch.full_like(y, none))
            )
        a_prev = ab[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=dev)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        sigma = (
            eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
        )
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if i + 1 < len(ts):
            x = x + sigma * torch.randn(x.shape, generator=generator).to(dev)
        if keep and (i + 1) * keep // len(ts) > i * keep // len(ts):
            snaps.append(x.cpu())
    return (x.cpu(), snaps) if keep else x.cpu()


@torch.no_grad()
def langevin(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    step_size: float,
    n_steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Langevin dynamics: n_steps of x <- x + (step_size / 2) score(x) + sqrt(step_size)
    z, z ~ N(0, I), from x (B, D). Run long with a small step it samples the density
    whose score it follows, but it moves between separated modes only rarely (Song &
    Ermon 2019)."""
    for _ in range(n_steps):
        z = torch.randn(x.shape, generator=generator).to(x.device)
        x = x + 0.5 * step_size * score_fn(x) + math.sqrt(step_size) * z
    return x


# --- The toy's ground truth: a mixture of isotropic Gaussians stays one under noise ---


def mixture_sample(
    n: int,
    means: torch.Tensor,
    std: float,
    weights: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws (n, D) of sum_k w_k N(mu_k, std^2 I), means (K, D), weights (K,), and
    the component of each (n,)."""
    k = torch.multinomial(weights, n, replacement=True, generator=generator)
    return means[k] + std * torch.randn(n, means.shape[1], generator=generator), k


def mixture_score(
    x: torch.Tensor,
    means: torch.Tensor,
    std: float,
    weights: torch.Tensor,
    alpha_bar: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """The exact score grad log q(x) (B, D) of the mixture noised to abar: q = sum_k w_k
    N(sqrt(abar) mu_k, v I) with v = abar std^2 + 1 - abar; x (B, D), means (K, D)."""
    ab = torch.as_tensor(alpha_bar, dtype=x.dtype)
    m = ab.sqrt() * means  # (K, D)
    v = ab * std**2 + 1 - ab
    diff = m.unsqueeze(0) - x.unsqueeze(1)  # (B, K, D)
    logits = weights.log() - diff.pow(2).sum(-1) / (2 * v)  # (B, K)
    r = logits.softmax(dim=1)  # each component's share of x
    return (r.unsqueeze(-1) * diff).sum(1) / v
