"""Greedy layer-wise pretraining (Hinton & Salakhutdinov, 2006; Bengio et al., 2007): a
stack of shallow autoencoders, each trained on the codes of the one below, unrolled into
one deep one. It builds on `cache` (each layer is cached) and `training`, never the
other way round."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .cache import train_or_load
from .models import Autoencoder
from .training import History, encode, fit


def layer_autoencoder(n_in: int, n_out: int, first: bool, last: bool) -> Autoencoder:
    """The shallow autoencoder that pretrains one layer n_in -> n_out of a deep one.

    Its activations are chosen so that the stack unrolls exactly: a ReLU code except at
    the deep model's code layer (identity), and a sigmoid output for the layer that
    reconstructs pixels, a ReLU output for the ones that reconstruct (non-negative)
    codes.
    """
    return Autoencoder(
        [n_in, n_out],
        code="identity" if last else "relu",
        out="sigmoid" if first else "relu",
    )


def greedy_pretrain(
    sizes: tuple[int, ...] | list[int],
    train_x: torch.Tensor,
    *,
    epochs: int,
    cache: bool = True,
    cache_name: str = "stack",
    **fit_kwargs: Any,
) -> tuple[list[Autoencoder], list[History]]:
    """Train a stack of shallow autoencoders, each on the codes of the one before.

    sizes: widths of the deep encoder, input first, e.g. (784, 512, 256, 128, 30). The
    first layer reconstructs pixels with BCE; the others reconstruct codes with MSE.
    Each layer is cached by `train_or_load` (as ``{cache_name}-layer{i}``), or with
    ``cache=False`` trained by `fit` every time. ``fit_kwargs`` go to `fit` (except
    ``loss`` and ``val_x``, set per layer).
    """
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"need at least an input and a code size, got {sizes}")
    if train_x.ndim != 2 or train_x.shape[1] != sizes[0]:
        raise ValueError(f"train_x must be (N, {sizes[0]}), got {tuple(train_x.shape)}")
    fit_kwargs = {k: v for k, v in fit_kwargs.items() if k not in ("loss", "val_x")}
    stack, histories, x = [], [], train_x
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # each layer's initial weights, reproducibly
        torch.manual_seed(fit_kwargs.get("seed", 0) + i)
        layer = layer_autoencoder(n_in, n_out, first=i == 0, last=i == len(sizes) - 2)
        loss = "bce" if i == 0 else "mse"
        if cache:
            layer, history = train_or_load(
                layer,
                x,
                name=f"{cache_name}-layer{i}",
                epochs=epochs,
                loss=loss,
                **fit_kwargs,
            )
        else:
            history = fit(layer, x, epochs=epochs, loss=loss, **fit_kwargs)
        stack.append(layer)
        histories.append(history)
        # the next layer's training data
        x = encode(layer, x)
    return stack, histories


def unroll(stack: list[Autoencoder]) -> Autoencoder:
    """One deep autoencoder whose encoder is the stack's encoders in order and whose
    decoder is their decoders in reverse, with the weights copied: before fine-tuning it
    computes exactly the stack's composition. The stack must be built by
    `greedy_pretrain` (`layer_autoencoder`), whose activations make the composition
    exact; any other stack is a ValueError."""
    if not stack:
        raise ValueError("the stack is empty")
    sizes = [stack[0].input_size] + [layer.code_size for layer in stack]
    for a, b in zip(stack[:-1], stack[1:]):
        if a.code_size != b.input_size:
            raise ValueError(
                f"layers do not chain: a code of {a.code_size} feeds an input of "
                f"{b.input_size}"
            )
    for i, layer in enumerate(stack):
        # The composition is exact only for the activations layer_autoencoder chooses.
        expected = layer_autoencoder(
            layer.input_size, layer.code_size, first=i == 0, last=i == len(stack) - 1
        )
        if not isinstance(layer, Autoencoder) or layer.config != expected.config:
            got = (
                layer.config if isinstance(layer, Autoencoder) else type(layer).__name__
            )
            raise ValueError(
                f"layer {i} is {got}, not {expected.config}: unroll composes exactly "
                "only a stack "
                f"built by greedy_pretrain (or layer_autoencoder)"
            )
    deep = Autoencoder(
        sizes, hidden="relu", code=stack[-1].config.code, out=stack[0].config.out
    )
    enc = [m for m in deep.encoder if isinstance(m, nn.Linear)]
    dec = [m for m in deep.decoder if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, layer in enumerate(stack):
            enc[i].load_state_dict(layer.encoder[0].state_dict())
            dec[len(stack) - 1 - i].load_state_dict(layer.decoder[0].state_dict())
    return deep
