"""The toy model of superposition (Elhage et al., 2022): n sparse features squeezed
through m < n dimensions, the data it is trained on, and the numbers that say which
features it kept and how."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .models import FlatAutoencoder, Spec, TransposedLinear, _pair, _whole


@dataclass(frozen=True)
class ToyConfig(Spec):
    """The plain spec a `ToyModel` is built from (and cached under)."""

    sizes: tuple[int, int]  # (n, m): n features in, m hidden dimensions

    def __post_init__(self) -> None:
        what = "(n features, m dimensions) with 1 <= m <= n"
        object.__setattr__(self, "sizes", _pair(self.sizes, what, small_ok=False))


class ToyModel(FlatAutoencoder):
    """h = W x, x' = ReLU(W^T h + b): x (B, n) -> h (B, m) -> x' (B, n), with W (m, n).

    Column W_i is where feature i lands in the hidden space. The ReLU lets the model
    filter out the small interference of other features that share a direction, which is
    what makes superposition pay once features are rarely active together. The decoder
    is the encoder's layer transposed (`TransposedLinear`), with the bias b as its only
    parameter.
    """

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        self.config = ToyConfig((n, m))
        # drawn first: nn.Linear's own init draws too
        weight = nn.init.xavier_normal_(torch.empty(m, n))
        self.encoder = nn.Linear(n, m, bias=False)
        with torch.no_grad():
            self.encoder.weight.copy_(weight)
        self.decoder = nn.Sequential(TransposedLinear(self.encoder), nn.ReLU())

    config_type = ToyConfig

    @classmethod
    def _build(cls, spec: ToyConfig) -> ToyModel:
        return cls(*spec.sizes)

    @property
    def W(self) -> torch.Tensor:
        """The shared weights, (m, n)."""
        return self.encoder.weight

    @property
    def b(self) -> torch.Tensor:
        """The output bias, (n,)."""
        return self.decoder[0].bias

    def extra_repr(self) -> str:
        n, m = self.config.sizes
        return f"features={n}, hidden={m}"


def toy_features(n_samples: int, n: int, density: float, seed: int = 0) -> torch.Tensor:
    """Synthetic sparse features (n_samples, n): each is 0 with probability 1 -
    ``density``, else uniform in [0, 1], independently of the others (Elhage et al.'s
    data)."""
    n_samples, n = _whole(n_samples, "sample count"), _whole(n, "feature count")
    if n_samples < 1 or n < 1 or not 0 < density <= 1:
        raise ValueError(
            f"need n_samples >= 1, n >= 1 and a density in (0, 1]; got {n_samples}, "
            f"{n}, {density}"
        )
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(n_samples, n, generator=gen)
    return values * (torch.rand(n_samples, n, generator=gen) < density)


def importance(n: int, decay: float = 0.9) -> torch.Tensor:
    """Feature importances decay ** i for i = 0..n-1, (n,): the weights of the toy's
    squared errors."""
    if not 0 < decay <= 1:
        raise ValueError(f"decay must lie in (0, 1], got {decay}")
    return decay ** torch.arange(_whole(n, "feature count"), dtype=torch.float32)


def feature_norms(model: ToyModel) -> torch.Tensor:
    """||W_i|| for each feature, (n,): near 1 for a feature the model represents, near 0
    for one it drops."""
    return model.W.detach().norm(dim=0)


def represented(model: ToyModel, threshold: float = 0.5) -> torch.Tensor:
    """A mask (n,) of the features with ||W_i|| above ``threshold``."""
    return feature_norms(model) > threshold


def angular_gaps(directions: torch.Tensor) -> torch.Tensor:
    """The gaps in degrees between neighbouring 2-D directions (2, j) around the circle,
    sorted: (j,), summing to 360.

    A regular polygon of j features has every gap at 360 / j.
    """
    if directions.ndim != 2 or directions.shape[0] != 2 or directions.shape[1] < 1:
        raise ValueError(
            "expected 2-D directions of shape (2, j) with j >= 1, got "
            f"{tuple(directions.shape)}"
        )
    angles = torch.atan2(directions[1], directions[0]).sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    return torch.rad2deg(gaps).sort().values
