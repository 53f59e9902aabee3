"""Regularizers Omega(h) for `fit(..., penalty=...)`: L1 and KL sparsity, the
contractive penalty, and the VAE's KL term.

Each is a small frozen dataclass, so that it can be called as ``penalty(model, x_in,
h)`` inside the training loop and also describes itself to the model cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .devices import model_device


def _check_weight(name: str, value: float) -> None:
    if not value >= 0:  # also catches NaN
        raise ValueError(
            f"{name} must be >= 0 (it weighs the penalty against the reconstruction), "
            f"got {value}"
        )


@dataclass(frozen=True)
class L1Sparsity:
    """Omega(h) = lam * sum_i |h_i|, averaged over the batch. For a ReLU (or any) code
    h: (B, k)."""

    lam: float

    def __post_init__(self) -> None:
        _check_weight("lam", self.lam)

    def __call__(
        self, model: nn.Module, x_in: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        return self.lam * h.abs().sum(dim=1).mean()


def kl_bernoulli(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(rho || rho_hat) between Bernoulli distributions, elementwise: (k,) -> (k,)."""
    # a dead or saturated unit gives a large, finite penalty
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log(
        (1 - rho) / (1 - rho_hat)
    )


@dataclass(frozen=True)
class KLSparsity:
    """Omega(h) = beta * sum_j KL(rho || rho_hat_j), where rho_hat_j is unit j's mean
    activation over the batch (Ng's CS294A notes). Needs a code in (0, 1): build the
    model with code="sigmoid"."""

    beta: float
    rho: float = 0.05

    def __post_init__(self) -> None:
        _check_weight("beta", self.beta)
        if not 0 < self.rho < 1:
            raise ValueError(
                "rho is a target mean activation and must lie in (0, 1), got "
                f"{self.rho}"
            )

    def __call__(
        self, model: nn.Module, x_in: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        lo, hi = torch.aminmax(h.detach())
        # a mean activation outside (0, 1) is no Bernoulli rate: KL would be meaningless
        if lo < 0 or hi > 1:
            raise ValueError(
                "KLSparsity needs a code in (0, 1), got activations from "
                f"{lo.item():g} to "
                f"{hi.item():g}; build the model with code='sigmoid'"
            )
        return self.beta * kl_bernoulli(self.rho, h.mean(dim=0)).sum()


def jacobian_norm_sq(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||df/dx||_F^2 for every row of x (B, D) -> (B,), by automatic differentiation;
    any encoder.

    Differentiable with respect to the encoder's parameters, so it can be trained on.
    """
    # (B, k, D)
    jac = torch.func.vmap(
        torch.func.jacrev(lambda v: encoder(v.unsqueeze(0)).squeeze(0))
    )(x)
    return jac.pow(2).sum(dim=(1, 2))


def sigmoid_jacobian_norm_sq(weight: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The same for one sigmoid layer h = sigmoid(W x + b), in closed form (Rifai et al.
    2011):
    ||J||_F^2 = sum_j (h_j (1 - h_j))^2 ||W_j||^2. weight: (k, D), h: (B, k) -> (B,)."""
    return ((h * (1 - h)) ** 2 * weight.pow(2).sum(dim=1)).sum(dim=1)


def _single_sigmoid_layer(encoder: nn.Module) -> nn.Linear | None:
    layers = list(encoder) if isinstance(encoder, nn.Sequential) else []
    if (
        len(layers) == 2
        and isinstance(layers[0], nn.Linear)
        and isinstance(layers[1], nn.Sigmoid)
    ):
        return layers[0]
    return None


@dataclass(frozen=True)
class Contractive:
    """Omega = lam * ||df/dx||_F^2, averaged over the batch: the contractive
    autoencoder.

    ``method="auto"`` uses the closed form when the encoder is one linear layer followed
    by a sigmoid, and automatic differentiation otherwise; ``"closed-form"`` or
    ``"autograd"`` force one.
    """

    lam: float
    method: str = "auto"

    def __post_init__(self) -> None:
        _check_weight("lam", self.lam)
        if self.method not in ("auto", "closed-form", "autograd"):
            raise ValueError(
                "method must be 'auto', 'closed-form' or 'autograd', got "
                f"{self.method!r}"
            )

    def __call__(
        self, model: nn.Module, x_in: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        return (
            self.lam
            * encoder_jacobian_norm_sq(model.encoder, x_in, h, self.method).mean()
        )


def encoder_jacobian_norm_sq(
    encoder: nn.Module,
    x: torch.Tensor,
    h: torch.Tensor | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """||df/dx||_F^2 per row of x (B, D) -> (B,), choosing the closed form where it
    applies. It runs where the encoder is (x and h are moved there; the result stays
    there, so that training can take its gradient)."""
    dev = model_device(encoder)
    x, h = x.to(dev), (h.to(dev) if h is not None else None)
    layer = _single_sigmoid_layer(encoder)
    if method == "closed-form" and layer is None:
        raise ValueError(
            "the closed form needs an encoder of one Linear layer and a Sigmoid"
        )
    if layer is not None and method != "autograd":
        return sigmoid_jacobian_norm_sq(layer.weight, encoder(x) if h is None else h)
    return jacobian_norm_sq(encoder, x)


def gaussian_kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_j, exp(logvar_j)) || N(0, 1)) in nats for every unit j of every row: (B,
    k), (B, k) -> (B, k).

    Closed form: 1/2 * (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in nats, per row: (B, k), (B, k) -> (B,);
    with a diagonal covariance the units are independent, so it is the sum of
    `gaussian_kl_per_unit` over them."""
    return gaussian_kl_per_unit(mu, logvar).sum(dim=1)


@dataclass(frozen=True)
class GaussianKL:
    """The VAE's KL term as a `fit` penalty: beta * KL(q(h | x) || N(0, I)), averaged
    over the batch and divided by the number of pixels D.

    `fit`'s reconstruction loss is a mean over pixels, so with ``loss="bce"`` and beta =
    1 the objective is exactly -ELBO / D per image (a Bernoulli decoder); beta != 1 is
    the beta-VAE (Higgins et al., 2017). Needs a model with ``posterior(x) -> (mu,
    logvar)``, such as `VAE`.
    """

    beta: float = 1.0

    def __post_init__(self) -> None:
        _check_weight("beta", self.beta)

    def __call__(
        self, model: nn.Module, x_in: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        if not hasattr(model, "posterior"):
            raise TypeError(
                "GaussianKL needs a model with posterior(x) -> (mu, logvar), such as "
                "aebook.models.VAE; "
                f"got {type(model).__name__}"
            )
        # the same q(h | x) the sample h was drawn from
        mu, logvar = model.posterior(x_in)
        return self.beta * gaussian_kl(mu, logvar).mean() / x_in.shape[1]
