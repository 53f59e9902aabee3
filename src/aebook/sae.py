"""The sparse autoencoder of interpretability research: an overcomplete dictionary
trained on a network's activations, with a ReLU code (sparse by
`aebook.penalties.L1Sparsity`) or a TopK code (Gao et al., 2024), and the auxiliary loss
that revives dead TopK latents. `fit` trains it like any autoencoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import FlatAutoencoder, Spec, _pair, _whole


@dataclass(frozen=True)
class SAEConfig(Spec):
    """The plain spec a `SparseAutoencoder` is built from (and cached under)."""

    # (d, width): the activations' width and the number of latents (the dictionary's
    # size)
    sizes: tuple[int, int]
    # TopK: keep the k largest pre-activations of each input; None: a ReLU code
    k: int | None = None

    def __post_init__(self) -> None:
        sizes = _pair(self.sizes, "(d, width), both >= 1")
        object.__setattr__(self, "sizes", sizes)
        if self.k is not None:
            object.__setattr__(self, "k", _whole(self.k, "k"))
            if not 1 <= self.k <= sizes[1]:
                raise ValueError(
                    f"k must lie between 1 and the width {sizes[1]}, got {self.k}"
                )


class SparseAutoencoder(FlatAutoencoder):
    """x (B, d) -> h = act(W_enc (x - b_dec) + b_enc) (B, width) -> x_hat = D h + b_dec
    (B, d).

    act is a ReLU, or with ``k`` a TopK: the k largest pre-activations of each input are
    kept (and ReLU'd), the rest set to zero. The dictionary D (d, width) is ``W_dec``
    with each column scaled to unit norm in the forward pass, so a latent's size lives
    in h alone and an L1 penalty on h cannot be dodged by shrinking h and growing D. The
    encoder starts as D's transpose (Gao et al., 2024).

    While training, the model counts for each latent how many inputs it has seen since
    it last fired (``since_fired``): `TopKAuxiliary` uses it to find dead latents.
    """

    def __init__(self, d: int, width: int, k: int | None = None) -> None:
        super().__init__()
        self.config = SAEConfig((d, width), k)
        d, width = self.config.sizes
        self.W_dec = nn.Parameter(F.normalize(torch.randn(d, width), dim=0))
        self.W_enc = nn.Parameter(self.W_dec.detach().T.clone())
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("since_fired", torch.zeros(width))

    config_type = SAEConfig

    @classmethod
    def _build(cls, spec: SAEConfig) -> SparseAutoencoder:
        return cls(*spec.sizes, k=spec.k)

    def center(self, x: torch.Tensor) -> SparseAutoencoder:
        """Start the decoder bias at the mean of activations x (N, d). Returns self.

        Gao et al. and Bricken et al. start it at the geometric median instead, which is
        less pulled by outliers; on a small, clean set of activations the mean is close
        and needs no iterative solver."""
        self.check_input(x)
        with torch.no_grad():
            self.b_dec.copy_(x.float().mean(dim=0))
        return self

    def start_from(
        self, directions: torch.Tensor, others_off: bool = False
    ) -> SparseAutoencoder:
        """Make the first m latents the directions (d, m), normalised, as atoms and
        encoder rows, with zero encoder bias; with ``others_off`` the other latents get
        a bias so negative that they never fire. Returns self. Given +-PCA directions
        and `center`, a TopK code then keeps the k largest |PCA coefficients| of each
        input: the model contains `aebook.metrics.pca_topk_reconstruct`."""
        d, width = self.config.sizes
        if (
            directions.ndim != 2
            or directions.shape[0] != d
            or not 1 <= directions.shape[1] <= width
        ):
            raise ValueError(
                f"expected directions of shape ({d}, m) with 1 <= m <= {width}, "
                f"got {tuple(directions.shape)}"
            )
        m = directions.shape[1]
        with torch.no_grad():
            atoms = F.normalize(directions.float(), dim=0)
            self.W_dec[:, :m] = atoms
            self.W_enc[:m] = atoms.T
            self.b_enc.zero_()
            if others_off:
                self.b_enc[m:] = -1e6
        return self

    @property
    def dictionary(self) -> torch.Tensor:
        """The unit-norm decoder columns, (d, width): latent j adds h_j times column j
        to x_hat."""
        return F.normalize(self.W_dec, dim=0)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, width), before the ReLU or TopK."""
        self.check_input(x)
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, width), sparse."""
        z = self.pre_activation(x)
        k = self.config.k
        if k is None:
            h = F.relu(z)
        else:
            top = z.topk(k, dim=1)
            h = torch.zeros_like(z).scatter(1, top.indices, F.relu(top.values))
        # bookkeeping for TopKAuxiliary: inputs seen since each latent last fired
        if self.training:
            with torch.no_grad():
                self.since_fired += len(x)
                self.since_fired[(h > 0).any(dim=0)] = 0
        return h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(B, width) -> (B, d)."""
        self.check_code(h)
        return h @ self.dictionary.T + self.b_dec

    def extra_repr(self) -> str:
        d, width = self.config.sizes
        return f"d={d}, width={width}, " + (
            f"TopK k={self.config.k}" if self.config.k else "ReLU"
        )


@dataclass(frozen=True)
class TopKAuxiliary:
    """Gao et al.'s (2024) auxiliary loss, a `fit` penalty for a `SparseAutoencoder`:
    ``coef * ||e_hat - e||^2 / ||e - mean(e)||^2`` over the batch, where e = x - x_hat
    is the main reconstruction's error (held fixed) and e_hat is e reconstructed by the
    ``k_aux`` largest pre-activations among the dead latents alone, those that have not
    fired for ``dead_after`` inputs. It gives dead latents a gradient towards what the
    live ones miss; zero while no latent is dead. Dividing by the error's own variance,
    as Gao et al.'s code does, keeps the term's weight the same however small the main
    error has become."""

    k_aux: int
    dead_after: int
    coef: float = 1 / 32

    def __post_init__(self) -> None:
        if (
            _whole(self.k_aux, "k_aux") < 1
            or _whole(self.dead_after, "dead_after") < 1
            or not self.coef >= 0
        ):
            raise ValueError(
                f"need k_aux >= 1, dead_after >= 1 and coef >= 0; got {self.k_aux}, "
                f"{self.dead_after}, {self.coef}"
            )

    def __call__(
        self, model: nn.Module, x_in: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        if not isinstance(model, SparseAutoencoder):
            raise TypeError(
                f"TopKAuxiliary needs a SparseAutoencoder, got {type(model).__name__}"
            )
        dead = model.since_fired >= self.dead_after
        n_dead = int(dead.sum())
        if n_dead == 0:
            return h.new_zeros(())
        error = (x_in - model.decode(h)).detach()
        z = model.pre_activation(x_in).masked_fill(~dead, float("-inf"))
        top = z.topk(min(self.k_aux, n_dead), dim=1)
        h_aux = torch.zeros_like(z).scatter(1, top.indices, F.relu(top.values))
        spread = (error - error.mean(dim=0)).pow(2).sum().clamp_min(1e-12)
        return self.coef * (h_aux @ model.dictionary.T - error).pow(2).sum() / spread
