"""Random draws that give the same numbers on every device: each is drawn where its
generator is (a CPU generator, such as `fit`'s, or the CPU's global one when none is
given) and then moved to the device of the tensor it goes with.

`fit` and its hooks (corruptions, augmentations, a VAE's noise, a diffusion objective)
draw through these, so a run on a GPU sees the CPU run's batches and noise; a hook a
reader writes should too (``torch.randn(..., generator=g, device=x.device)`` fails on a
GPU with `fit`'s CPU generator).
"""

from __future__ import annotations

import torch


def _on(
    generator: torch.Generator | None, like: torch.Tensor
) -> tuple[torch.device, torch.device]:
    """(where to draw, where the result goes): on the generator's device, or the CPU's
    global generator when there is none, so that a run gives the same numbers whichever
    device ``like`` is on."""
    return (generator.device if generator is not None else torch.device("cpu")), (
        like.device
    )


def rand(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """U(0, 1) numbers of ``shape`` from ``generator``, on ``like``'s device."""
    draw, to = _on(generator, like)
    return torch.rand(shape, generator=generator, device=draw).to(to)


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """N(0, 1) numbers of ``shape`` and ``like``'s dtype from ``generator``, on
    ``like``'s device."""
    draw, to = _on(generator, like)
    return torch.randn(shape, generator=generator, device=draw, dtype=like.dtype).to(to)


def randint(
    low: int,
    high: int,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """Integers in [low, high) of ``shape`` from ``generator``, on ``like``'s
    device."""
    draw, to = _on(generator, like)
    return torch.randint(low, high, shape, generator=generator, device=draw).to(to)
