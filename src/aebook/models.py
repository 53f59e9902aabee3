"""One `Autoencoder` class for every chapter: linear, shallow and deep are all a spec of layer sizes."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


@dataclass(frozen=True)
class AEConfig:
    """The plain spec an `Autoencoder` is built from (and cached under)."""

    sizes: tuple[int, ...]  # encoder widths, input first and code last, e.g. (784, 256, 32); the decoder mirrors it
    hidden: str = "relu"  # activation after every hidden layer, in encoder and decoder
    code: str = "identity"  # activation of the code h (sigmoid for KL sparsity, identity for PCA-like codes)
    out: str = "sigmoid"  # activation of the reconstruction r (sigmoid keeps pixels in [0, 1])

    def __post_init__(self) -> None:
        if isinstance(self.sizes, (str, bytes)) or not hasattr(self.sizes, "__iter__"):
            raise ValueError(f"sizes must be a list of layer widths such as [784, 256, 32], got {self.sizes!r}")
        widths = []
        for s in self.sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise ValueError(f"every layer width must be a whole number, got {s!r} in sizes={list(self.sizes)!r}")
            widths.append(int(s))
        object.__setattr__(self, "sizes", tuple(widths))
        if len(self.sizes) < 2 or any(s < 1 for s in self.sizes):
            raise ValueError(f"sizes must list at least an input and a code width, all >= 1; got {self.sizes}")
        for field in ("hidden", "code", "out"):
            if getattr(self, field) not in ACTIVATIONS:
                raise ValueError(f"unknown {field} activation {getattr(self, field)!r}; "
                                 f"choose one of {', '.join(ACTIVATIONS)}")

    def to_dict(self) -> dict:
        return {**asdict(self), "sizes": list(self.sizes)}


def mlp(sizes: tuple[int, ...], hidden: str, last: str) -> nn.Sequential:
    """Linear layers through ``sizes``, ``hidden`` after each inner layer and ``last`` after the final one."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        act = last if i == len(sizes) - 2 else hidden
        if act != "identity":  # keeps printed models and state_dicts free of no-op layers
            layers.append(ACTIVATIONS[act]())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """x -> h = f(x) -> r = g(h), with f and g mirror-image MLPs."""

    def __init__(self, sizes: tuple[int, ...] | list[int], hidden: str = "relu",
                 code: str = "identity", out: str = "sigmoid") -> None:
        super().__init__()
        self.config = AEConfig(sizes, hidden, code, out)  # AEConfig checks and converts the sizes
        self.encoder = mlp(self.config.sizes, hidden, code)
        self.decoder = mlp(self.config.sizes[::-1], hidden, out)

    @classmethod
    def from_config(cls, config: AEConfig | dict) -> "Autoencoder":
        c = config if isinstance(config, AEConfig) else AEConfig(**config)
        return cls(c.sizes, c.hidden, c.code, c.out)

    @property
    def input_size(self) -> int:
        return self.config.sizes[0]

    @property
    def code_size(self) -> int:
        return self.config.sizes[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, k)."""
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"expected input of shape (batch, {self.input_size}), got {tuple(x.shape)}; "
                             + shape_hint(tuple(x.shape), self.input_size))
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(B, k) -> (B, D)."""
        if h.ndim != 2 or h.shape[1] != self.code_size:
            raise ValueError(f"expected a code of shape (batch, {self.code_size}), got {tuple(h.shape)}")
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D) reconstruction."""
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        c = self.config
        return f"sizes={'-'.join(map(str, c.sizes))}, hidden={c.hidden}, code={c.code}, out={c.out}"


def shape_hint(shape: tuple[int, ...], width: int) -> str:
    """What to do with input of ``shape`` for a model that takes (batch, ``width``)."""
    n = 1
    for s in shape:
        n *= s
    if shape == (width,) or (len(shape) >= 2 and n == width):
        return f"for one image, add a batch axis: x.reshape(1, {width})"
    if n % width == 0 and len(shape) > 2:
        return f"flatten the images first: x.reshape(-1, {width})"
    return f"this model takes {width} numbers per image"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
