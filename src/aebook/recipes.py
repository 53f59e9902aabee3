"""Models that more than one chapter trains, named once: architecture, training
settings and cache name.

A chapter asks for a model by name and seed (``recipes.train("one hidden layer",
data, seed=1)``); a later chapter that reuses it asks by the same name, so both share
one cache entry and neither restates the settings. So far the table holds chapter 6's
family of fully connected autoencoders, which chapters 7 and 9 reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .cache import train_or_load
from .data import Data
from .models import Autoencoder
from .pretraining import greedy_pretrain, unroll
from .training import History, set_seed

K = 30  # the code size of chapter 6's family
DEEP = (784, 1024, 512, K)
# every recipe anneals on a cosine schedule and is validated on the test images
SHALLOW = dict(epochs=25, lr=3e-3, batch_size=64, loss="bce", schedule="cosine")


@dataclass(frozen=True)
class Recipe:
    """``Autoencoder(**spec)`` trained by `fit` with ``settings``, cached as ``cache``
    (seed 0) or ``{cache}-seed{n}``. With ``pretrain`` (greedy_pretrain's settings),
    the weights start from a greedily pretrained stack of ``spec``'s sizes."""

    spec: dict[str, Any]
    settings: dict[str, Any]
    cache: str
    pretrain: dict[str, Any] = field(default_factory=dict)

    def cache_name(self, seed: int = 0) -> str:
        return self.cache + (f"-seed{seed}" if seed else "")


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
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is a ValueError that lists them."""
    if name not in RECIPES:
        raise ValueError(f"no recipe {name!r}; the recipes are {sorted(RECIPES)}")
    return RECIPES[name]


def pretrained_stack(
    name: str, data: Data, *, seed: int = 0, device: str | torch.device = "cpu"
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
    name: str,
    data: Data,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[nn.Module, History]:
    """Recipe ``name`` trained on ``data.train_x`` from ``seed`` (loaded when cached),
    validated on ``data.test_x``: (model in eval mode, its History)."""
    r = recipe(name)
    model = (
        unroll(pretrained_stack(name, data, seed=seed, device=device)[0])
        if r.pretrain
        else None
    )
    set_seed(seed)
    return train_or_load(
        model if model is not None else Autoencoder(**r.spec),
        data.train_x,
        name=r.cache_name(seed),
        seed=seed,
        device=device,
        progress=progress,
        val_x=data.test_x,
        **r.settings,
    )
