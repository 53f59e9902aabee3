"""One `Autoencoder` class for every chapter: linear, shallow and deep are all a spec of
layer sizes."""

from __future__ import annotations

import copy
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import draws

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def _whole(value: object, what: str, where: str = "") -> int:
    """``value`` as an int, or a ValueError naming ``what`` it should be (and ``where``
    it was)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"every {what} must be a whole number, got {value!r}{where}")
    return int(value)


def _check_activations(config: object, fields: tuple[str, ...]) -> None:
    for field in fields:
        if getattr(config, field) not in ACTIVATIONS:
            raise ValueError(
                f"unknown {field} activation {getattr(config, field)!r}; "
                f"choose one of {', '.join(ACTIVATIONS)}"
            )


def _act(name: str) -> list[nn.Module]:
    """The activation ``name`` as a layer list; none for identity, which keeps printed
    models and state_dicts free of no-op layers."""
    return [] if name == "identity" else [ACTIVATIONS[name]()]


def _pair(sizes: object, what: str, small_ok: bool = True) -> tuple[int, int]:
    """``sizes`` as two whole numbers >= 1, or a ValueError that says ``what`` they are
    (with ``small_ok=False`` the second may not exceed the first)."""
    pair = tuple(_whole(s, "size") for s in sizes)  # type: ignore[attr-defined]
    if len(pair) != 2 or min(pair) < 1 or (not small_ok and pair[1] > pair[0]):
        raise ValueError(f"sizes must be {what}, got {sizes!r}")
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class Spec:
    """The plain spec a model is built from (and cached under): a frozen dataclass whose
    ``to_dict`` is plain JSON (tuples as lists), the form cache keys and checkpoints
    store."""

    def to_dict(self) -> dict:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class AEConfig(Spec):
    """The plain spec an `Autoencoder` is built from (and cached under)."""

    # encoder widths, input first and code last, e.g. (784, 256, 32); the decoder
    # mirrors it
    sizes: tuple[int, ...]
    hidden: str = "relu"  # activation after every hidden layer, in encoder and decoder
    # activation of the code h (sigmoid for KL sparsity, identity for PCA-like codes)
    code: str = "identity"
    # activation of the reconstruction r (sigmoid keeps pixels in [0, 1])
    out: str = "sigmoid"
    # decoder weights are the encoder's, transposed (each decoder layer keeps its own
    # bias)
    tied: bool = False
    # std of Gaussian noise added before the code activation while training (semantic
    # hashing)
    code_noise: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.sizes, (str, bytes)) or not hasattr(self.sizes, "__iter__"):
            raise ValueError(
                "sizes must be a list of layer widths such as [784, 256, 32], got "
                f"{self.sizes!r}"
            )
        widths = tuple(
            _whole(s, "layer width", f" in sizes={list(self.sizes)!r}")
            for s in self.sizes
        )
        object.__setattr__(self, "sizes", widths)
        if len(self.sizes) < 2 or any(s < 1 for s in self.sizes):
            raise ValueError(
                "sizes must list at least an input and a code width, all >= 1; got "
                f"{self.sizes}"
            )
        _check_activations(self, ("hidden", "code", "out"))
        if not isinstance(self.tied, bool):
            raise ValueError(f"tied must be True or False, got {self.tied!r}")
        if (
            isinstance(self.code_noise, bool)
            or not isinstance(self.code_noise, (int, float))
            or not self.code_noise >= 0
        ):
            raise ValueError(
                "code_noise is a standard deviation and must be a number >= 0, got "
                f"{self.code_noise!r}"
            )
        object.__setattr__(self, "code_noise", float(self.code_noise))


def mlp(sizes: tuple[int, ...], hidden: str, last: str) -> nn.Sequential:
    """Linear layers through ``sizes``, ``hidden`` after each inner layer and ``last``
    after the final one."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [
            nn.Linear(n_in, n_out),
            *_act(last if i == len(sizes) - 2 else hidden),
        ]
    return nn.Sequential(*layers)


class TransposedLinear(nn.Module):
    """A tied decoder layer, mapping back what ``source`` maps: (B, source.out) -> (B,
    source.in), y = h W + b with W = ``source.weight`` (out, in).

    Only the bias is this layer's own parameter; the weight stays the encoder layer's,
    so the optimizer, the state_dict and ``.to(device)`` see it once.
    """

    def __init__(self, source: nn.Linear) -> None:
        super().__init__()
        # a tuple, so that the encoder layer is not registered a second time
        self._source = (source,)
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def weight(self) -> torch.Tensor:
        """The source's weight transposed, (source.in, source.out): nn.Linear's (out,
        in) layout for this layer."""
        return self._source[0].weight.t()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.weight, self.bias)

    def __deepcopy__(self, memo: dict) -> TransposedLinear:
        # copy.deepcopy of the whole autoencoder must tie the copy to the *copied*
        # encoder layer
        new = TransposedLinear.__new__(TransposedLinear)
        nn.Module.__init__(new)
        new._source = (copy.deepcopy(self._source[0], memo),)
        new.bias = copy.deepcopy(self.bias, memo)
        return new


class FlatAutoencoder(nn.Module):
    """What every autoencoder in the book shares: flat images (B, D) in and out, through
    ``self.encoder`` and ``self.decoder``, with shape checks that say what to do.
    Subclasses build the two halves and say their ``input_size`` (D) and ``code_size``
    (k), by default the first and last of ``config.sizes``."""

    encoder: nn.Module
    decoder: nn.Module
    config: Any
    config_type: ClassVar[type[Spec]]  # the spec class `from_config` builds from a dict

    @classmethod
    def from_config(cls, config: Spec | dict) -> Any:
        """A new model, with fresh weights, from its spec or its ``to_dict()``."""
        spec = (
            config if isinstance(config, cls.config_type) else cls.config_type(**config)
        )
        return cls._build(spec)

    @classmethod
    def _build(cls, spec: Any) -> Any:
        """The model for ``spec``; by default the spec's fields are the constructor's
        arguments."""
        return cls(**{f.name: getattr(spec, f.name) for f in fields(spec)})

    @property
    def input_size(self) -> int:
        return self.config.sizes[0]

    @property
    def code_size(self) -> int:
        return self.config.sizes[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError that says what to do unless x is (B, D)."""
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"expected input of shape (batch, {self.input_size}), got "
                f"{tuple(x.shape)}; " + shape_hint(tuple(x.shape), self.input_size)
            )

    def check_code(self, h: torch.Tensor) -> None:
        """Raise a ValueError unless h is (B, k)."""
        if h.ndim != 2 or h.shape[1] != self.code_size:
            raise ValueError(
                f"expected a code of shape (batch, {self.code_size}), got "
                f"{tuple(h.shape)}"
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, k)."""
        self.check_input(x)
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(B, k) -> (B, D)."""
        self.check_code(h)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D) reconstruction."""
        return self.decode(self.encode(x))


class CodeNoise(nn.Module):
    """Adds N(0, std^2) noise while training and nothing in eval mode: (B, k) -> (B, k).

    Placed before a sigmoid code, it makes the decoder useless unless the
    pre-activations are large, so the code units learn to sit near 0 or 1: Salakhutdinov
    & Hinton's (2009) trick for binary codes. It draws from torch's global generator,
    which `fit` seeds.
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (
            # from the CPU's global generator, as on every device (`draws`)
            z + self.std * draws.randn(z.shape, None, z)
            if self.training and self.std > 0
            else z
        )

    def extra_repr(self) -> str:
        return f"std={self.std:g}"


class Autoencoder(FlatAutoencoder):
    """x -> h = f(x) -> r = g(h), with f and g mirror-image MLPs (``tied=True``: g uses
    f's weights, transposed).

    ``code_noise > 0`` adds Gaussian noise of that std before the code activation while
    training.
    """

    config_type = AEConfig

    def __init__(
        self,
        sizes: tuple[int, ...] | list[int],
        hidden: str = "relu",
        code: str = "identity",
        out: str = "sigmoid",
        tied: bool = False,
        code_noise: float = 0.0,
    ) -> None:
        super().__init__()
        # AEConfig checks and converts the sizes
        self.config = AEConfig(sizes, hidden, code, out, tied, code_noise)
        self.encoder = mlp(self.config.sizes, hidden, code)
        # just before the code activation (after the last Linear)
        if self.config.code_noise > 0:
            at = (
                max(i for i, m in enumerate(self.encoder) if isinstance(m, nn.Linear))
                + 1
            )
            self.encoder.insert(at, CodeNoise(self.config.code_noise))
        self.decoder = mlp(self.config.sizes[::-1], hidden, out)
        if tied:
            linears = [m for m in self.encoder if isinstance(m, nn.Linear)][::-1]
            for i, m in enumerate(self.decoder):
                if isinstance(m, nn.Linear):
                    self.decoder[i] = TransposedLinear(linears.pop(0))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"sizes={'-'.join(map(str, c.sizes))}, hidden={c.hidden}, code={c.code}, "
            f"out={c.out}"
            + (", tied" if c.tied else "")
            + (f", code_noise={c.code_noise:g}" if c.code_noise else "")
        )


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


UPSAMPLING = ("transpose", "resize")


@dataclass(frozen=True)
class ConvConfig(Spec):
    """The plain spec a `ConvAutoencoder` is built from (and cached under)."""

    # channels of each stride-2 3x3 convolution: 28x28 -> 14x14 -> 7x7
    channels: tuple[int, ...] = (32, 64)
    # width of the dense code h; None: h is the last feature map itself, flattened
    code: int | None = 30
    # "transpose": stride-2 transposed convolutions; "resize": nearest x2, then a 3x3
    # conv
    upsample: str = "transpose"
    # images are side x side pixels, one channel, passed flat as (N, side * side)
    side: int = 28
    # activation after every convolution but the last, and after the decoder's dense
    # layer
    hidden: str = "relu"
    out: str = "sigmoid"  # activation of the reconstruction r
    # with code=None: a 1x1 convolution to this many maps makes a smaller spatial code
    map_channels: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.channels, (str, bytes)) or not hasattr(
            self.channels, "__iter__"
        ):
            raise ValueError(
                "channels must be a list of channel counts such as [32, 64], got "
                f"{self.channels!r}"
            )
        chans = tuple(_whole(c, "channel count") for c in self.channels)
        if not chans or any(c < 1 for c in chans):
            raise ValueError(
                "channels must list at least one convolution, each with >= 1 "
                f"channels; got {chans}"
            )
        object.__setattr__(self, "channels", chans)
        if self.code is not None:
            object.__setattr__(self, "code", _whole(self.code, "code width"))
            if self.code < 1:
                raise ValueError(
                    "code must be a width >= 1, or None for a spatial code map; got "
                    f"{self.code}"
                )
        if self.map_channels is not None:
            object.__setattr__(
                self, "map_channels", _whole(self.map_channels, "map_channels")
            )
            if self.code is not None or self.map_channels < 1:
                raise ValueError(
                    "map_channels (a spatial code of that many maps) needs code=None "
                    "and a count "
                    f">= 1; got code={self.code}, map_channels={self.map_channels}"
                )
        side = _whole(self.side, "side")
        object.__setattr__(self, "side", side)
        if side < 2 ** len(chans):
            raise ValueError(
                f"{len(chans)} stride-2 convolutions need images of at least "
                f"{2 ** len(chans)} "
                f"pixels a side, got side={side}; use fewer channels entries"
            )
        if self.upsample not in UPSAMPLING:
            raise ValueError(
                f"unknown upsample {self.upsample!r}; choose one of "
                f"{', '.join(map(repr, UPSAMPLING))}"
            )
        _check_activations(self, ("hidden", "out"))

    @property
    def sides(self) -> list[int]:
        """Feature-map sides, input first: a 3x3 stride-2 convolution with padding 1
        maps n to ceil(n / 2)."""
        sides = [self.side]
        for _ in self.channels:
            sides.append((sides[-1] + 1) // 2)
        return sides


class ConvAutoencoder(FlatAutoencoder):
    """x (N, side^2) -> stride-2 convolutions -> h (N, k) -> the mirror image -> r (N,
    side^2).

    Same interface as `Autoencoder` (flat images in and out, ``encode``/``decode``), so
    `fit`, `train_or_load`, the metrics and the sliders take either. The encoder halves
    the feature map with each 3x3 stride-2 convolution; the decoder doubles it back,
    with transposed convolutions or with nearest-neighbour resizing followed by a 3x3
    convolution (Odena et al., 2016).
    """

    config_type = ConvConfig

    def __init__(
        self,
        channels: tuple[int, ...] | list[int] = (32, 64),
        code: int | None = 30,
        upsample: str = "transpose",
        side: int = 28,
        hidden: str = "relu",
        out: str = "sigmoid",
        map_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.config = c = ConvConfig(
            channels, code, upsample, side, hidden, out, map_channels
        )
        sides, last = c.sides, c.channels[-1]
        flat = last * sides[-1] ** 2  # the last feature map, flattened
        enc: list[nn.Module] = [nn.Unflatten(1, (1, c.side, c.side))]
        for c_in, c_out in zip((1, *c.channels[:-1]), c.channels):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), *_act(hidden)]
        dec: list[nn.Module] = []
        # a spatial code of fewer maps: 1x1 convolutions down and back up
        if map_channels is not None:
            enc.append(nn.Conv2d(last, map_channels, 1))
            dec += [
                nn.Unflatten(1, (map_channels, sides[-1], sides[-1])),
                nn.Conv2d(map_channels, last, 1),
                # flattened again, so the shared Unflatten below serves it too
                *_act(hidden),
                nn.Flatten(),
            ]
        enc.append(nn.Flatten())
        # a dense code: one linear layer each way between it and the feature map
        if code is not None:
            enc.append(nn.Linear(flat, c.code))
            dec += [nn.Linear(c.code, flat), *_act(hidden)]
        dec.append(nn.Unflatten(1, (last, sides[-1], sides[-1])))
        ups = list(
            zip(c.channels[::-1], (*c.channels[-2::-1], 1), sides[:0:-1], sides[-2::-1])
        )
        for i, (c_in, c_out, n_in, n_out) in enumerate(ups):
            # output_padding picks n_out from the two sizes 2 n_in - 1 and 2 n_in
            if upsample == "transpose":
                dec.append(
                    nn.ConvTranspose2d(
                        c_in,
                        c_out,
                        3,
                        stride=2,
                        padding=1,
                        output_padding=n_out - 2 * n_in + 1,
                    )
                )
            else:
                dec += [
                    nn.Upsample(size=(n_out, n_out), mode="nearest"),
                    nn.Conv2d(c_in, c_out, 3, padding=1),
                ]
            dec += _act(out if i == len(ups) - 1 else hidden)
        dec.append(nn.Flatten())
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    @property
    def input_size(self) -> int:
        return self.config.side**2

    @property
    def code_size(self) -> int:
        c = self.config
        if c.code is not None:
            return c.code
        return (c.map_channels or c.channels[-1]) * c.sides[-1] ** 2

    def extra_repr(self) -> str:
        c = self.config
        code = (
            c.code
            if c.code is not None
            else f"map of {c.map_channels}"
            if c.map_channels
            else "map"
        )
        return (
            f"channels={'-'.join(map(str, c.channels))}, code={code}, "
            f"upsample={c.upsample}, side={c.side}, out={c.out}"
        )


@dataclass(frozen=True)
class VAEConfig(Spec):
    """The plain spec a `VAE` is built from (and cached under)."""

    # input first, latent size k last, e.g. (784, 256, 2); the decoder mirrors it
    sizes: tuple[int, ...]
    hidden: str = "relu"  # activation after every hidden layer
    out: str = "sigmoid"  # the decoder's output: Bernoulli means in [0, 1]

    def __post_init__(self) -> None:
        # the same checks and messages
        AEConfig(self.sizes, self.hidden, "identity", self.out)
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))


class VAE(FlatAutoencoder):
    """A variational autoencoder (Kingma & Welling, 2014): q(h | x) = N(mu(x),
    diag(exp(logvar(x)))), p(h) = N(0, I), p(x | h) with means g(h).

    ``encode`` returns a reparameterised sample h = mu + sigma * eps in training mode
    and the mean mu in eval mode, so `fit` trains it like any autoencoder; the KL term
    comes in as a penalty (`aebook.penalties.GaussianKL`), which reads q(h | x) from
    ``posterior``.
    """

    config_type = VAEConfig

    def __init__(
        self,
        sizes: tuple[int, ...] | list[int],
        hidden: str = "relu",
        out: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.config = c = VAEConfig(sizes, hidden, out)
        # empty for sizes (D, k): no hidden layer
        body = mlp(c.sizes[:-1], hidden, hidden)
        # (B, 2k): mu, logvar
        self.encoder = nn.Sequential(*body, nn.Linear(c.sizes[-2], 2 * c.sizes[-1]))
        self.decoder = mlp(c.sizes[::-1], hidden, out)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> mu (B, k), logvar (B, k) of q(h | x)."""
        mu, logvar = super().encode(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, k): a sample of q(h | x) while training (from torch's global
        generator), its mean otherwise."""
        mu, logvar = self.posterior(x)
        return reparameterise(mu, logvar) if self.training else mu

    def extra_repr(self) -> str:
        c = self.config
        return f"sizes={'-'.join(map(str, c.sizes))}, hidden={c.hidden}, out={c.out}"


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """h = mu + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of N(mu,
    diag(exp(logvar))) through which gradients reach mu and logvar. (B, k), (B, k) ->
    (B, k)."""
    eps = draws.randn(mu.shape, generator, mu)
    return mu + torch.exp(0.5 * logvar) * eps
