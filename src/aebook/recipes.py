"""Models that more than one chapter trains, named once: architecture, training
settings and cache name.

A chapter asks for a model by name and seed (``recipes.train("one hidden layer",
data, seed=1)``); a later chapter that reuses it asks by the same name, so both share
one cache entry and neither restates the settings. The table holds chapter 6's family
of fully connected autoencoders, which chapters 7 and 9 reuse; the 784-256 sigmoid
autoencoders that chapters 3, 4 and 5 share; chapter 5's denoising family; and chapter
8's VAE and autoencoder. A chapter's own variant of a recipe (another code, penalty,
corruption or rate) is ``recipe(name).variant(cache_name, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .cache import train_or_load
from .data import Corruption, Data
from .models import VAE, Autoencoder
from .penalties import Contractive, GaussianKL, KLSparsity, L1Sparsity
from .pretraining import greedy_pretrain, unroll
from .training import History, set_seed

K = 30  # the code size of chapter 6's family
DEEP = (784, 1024, 512, K)
# chapter 6's family anneals on a cosine schedule and is validated on the test images
SHALLOW = dict(epochs=25, lr=3e-3, batch_size=64, loss="bce", schedule="cosine")
# chapters 3 to 5: 784-256 with a sigmoid code, 30 epochs of binary cross-entropy
SIGMOID = dict(sizes=[784, 256], code="sigmoid")
SIGMOID_FIT = dict(epochs=30, lr=3e-3, batch_size=128, loss="bce")
VAE_FIT = dict(epochs=20, lr=3e-3, batch_size=128, loss="bce", schedule="cosine")


@dataclass(frozen=True)
class Recipe:
    """``kind(**spec)`` (an Autoencoder unless said) trained by `fit` with
    ``settings``, cached as ``cache`` (seed 0) or ``{cache}-seed{n}``. With
    ``pretrain`` (greedy_pretrain's settings) the weights start from a greedily
    pretrained stack of ``spec``'s sizes; with ``validate`` the test images are scored
    after every epoch."""

    spec: dict[str, Any]
    settings: dict[str, Any]
    cache: str
    pretrain: dict[str, Any] = field(default_factory=dict)
    validate: bool = True
    kind: type[nn.Module] = Autoencoder

    def cache_name(self, seed: int = 0) -> str:
        return self.cache + (f"-seed{seed}" if seed else "")

    def variant(
        self, cache: str, *, spec: dict[str, Any] | None = None, **settings: Any
    ) -> Recipe:
        """This recipe under another cache name, with ``spec`` entries and training
        ``settings`` changed: a chapter's own model that builds on a named one."""
        return replace(
            self,
            cache=cache,
            spec={**self.spec, **(spec or {})},
            settings={**self.settings, **settings},
        )


RECIPES: dict[str, Recipe] = {
    "linear": Recipe(
        dict(sizes=[784, K], hidden="identity", out="identity"),
        dict(epochs=40, lr=1e-2, batch_size=128, schedule="cosine"),
        "deep-linear",
    ),
    "shallow": Recipe(dict(sizes=[784, K], code="relu"), SHALLOW, "deep-shallow"),
    "784-32-30": Recipe(
        dict(sizes=[784, 32, K]), SHALLOW, "deep-conv-chapter 784-32-30"
    ),
    "one hidden layer": Recipe(
        dict(sizes=[784, 256, K]), SHALLOW, "deep-one hidden layer"
    ),
    "one wide hidden layer": Recipe(
        dict(sizes=[784, 1024, K]), SHALLOW, "deep-one wide hidden layer"
    ),
    "deep, end to end": Recipe(
        dict(sizes=list(DEEP)),
        dict(epochs=150, lr=1e-3, batch_size=128, loss="bce", schedule="cosine"),
        "deep-deep, end to end",
    ),
    # fine-tuned for 40 epochs after three layers of 10 epochs each
    "deep, pretrained": Recipe(
        dict(sizes=list(DEEP)),
        dict(epochs=40, lr=1e-3, batch_size=128, loss="bce", schedule="cosine"),
        "deep-deep, pretrained",
        pretrain=dict(epochs=10, lr=1e-3, batch_size=128, cache_name="deep-stack"),
    ),
    "sigmoid 784-256": Recipe(
        SIGMOID, SIGMOID_FIT, "sparse-plain-sigmoid", validate=False
    ),
    # chapter 5's plain autoencoder, of which its denoising ones are variants
    # chapter 8: the VAE and the plain autoencoder of the same shape, 20 epochs
    "VAE 784-256-20": Recipe(
        dict(sizes=[784, 256, 20]),
        {**VAE_FIT, "penalty": GaussianKL(1.0)},
        "vae-20",
        validate=False,
        kind=VAE,
    ),
    "autoencoder 784-256-20": Recipe(
        dict(sizes=[784, 256, 20]), VAE_FIT, "vae-chapter-autoencoder", validate=False
    ),
    "784-256-64": Recipe(
        dict(sizes=[784, 256, 64]),
        dict(epochs=30, lr=1e-3, batch_size=128, loss="bce"),
        "plain-AE",
        validate=False,
    ),
    "KL-sparse 784-256": Recipe(
        SIGMOID,
        {**SIGMOID_FIT, "penalty": KLSparsity(0.05, 0.05)},
        "sparse-kl-0.05",
        validate=False,
    ),
    "L1-sparse 784-256": Recipe(
        SIGMOID,
        {**SIGMOID_FIT, "penalty": L1Sparsity(3e-4)},
        "sparse-l1-sig-3e-4",
        validate=False,
    ),
    "contractive 784-256": Recipe(
        SIGMOID,
        {**SIGMOID_FIT, "penalty": Contractive(0.003)},
        "sparse-cae-0.003",
        validate=False,
    ),
    "denoising 784-256": Recipe(
        SIGMOID,
        {**SIGMOID_FIT, "corrupt": Corruption("gaussian", 0.3)},
        "sparse-dae-gaussian-0.3",
        validate=False,
    ),
}


def recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a Recipe is returned as it is); an unknown name is a
    ValueError that lists them."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"no recipe {name!r}; the recipes are {sorted(RECIPES)}")
    return RECIPES[name]


def pretrained_stack(
    name: str, data: Data, *, seed: int = 0, device: str | torch.device = "auto"
) -> tuple[list[Autoencoder], list[History]]:
    """The greedily pretrained shallow autoencoders of recipe ``name`` (cached)."""
    r = recipe(name)
    if not r.pretrain:
        raise ValueError(f"recipe {name!r} has no pretraining")
    settings = dict(r.pretrain)
    if seed:
        settings["cache_name"] += f"-seed{seed}"
    set_seed(seed)
    return greedy_pretrain(
        r.spec["sizes"],
        data.train_x,
        seed=seed,
        device=device,
        progress=False,
        **settings,
    )


def train(
    name: str | Recipe,
    data: Data,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    **hooks: Any,
) -> tuple[nn.Module, History]:
    """Recipe ``name`` (or a Recipe, such as a variant) trained on ``data.train_x`` from
    ``seed``, loaded when cached: (model in eval mode, its History). ``hooks`` go to
    `fit` as they are (a ``track`` function, say: it watches the run and leaves the
    weights as they are, though the cache key covers it)."""
    r = recipe(name)
    model = (
        unroll(pretrained_stack(name, data, seed=seed, device=device)[0])
        if r.pretrain
        else None
    )
    set_seed(seed)
    return train_or_load(
        model if model is not None else r.kind(**r.spec),
        data.train_x,
        name=r.cache_name(seed),
        seed=seed,
        device=device,
        progress=progress,
        **({"val_x": data.test_x} if r.validate else {}),
        **r.settings,
        **hooks,
    )
