"""The one training loop of the book, with hooks for a penalty Omega(h), an input
corruption and an augmentation."""

from __future__ import annotations

import math
import operator
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .devices import computes_as, describe, model_device, resolve_device

# penalty(model, x_in, h) -> scalar Omega(h), added to the reconstruction loss.
#   x_in: (B, D) the (possibly corrupted) input the encoder saw; h: (B, k) its code.
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
# corrupt(x, generator) -> x~: (B, D) -> (B, D), drawing its randomness from the
# generator. fit's generator is a CPU one on every device: a hook draws through
# `aebook.draws` (there, then moved to x's device), never with device=x.device.
Corruption = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# augment(x, generator) -> x': (B, D) -> (B, D), applied to the batch itself: x' is both
# input and target.
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# track(model) -> {name: number}, called after every epoch with the model in eval mode
# (a VAE's test ELBO, say).
Tracker = Callable[[nn.Module], Mapping[str, float]]
# objective(model, x, generator) -> the scalar training loss of the batch x (B, D), in
# place of the reconstruction: a model whose target is not its input (a diffusion model
# predicts the noise it was given) brings its own, drawing its randomness from the
# generator.
Objective = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]

LOSSES = ("mse", "bce")
SCHEDULES = ("constant", "cosine")


@dataclass
class History:
    """Per-epoch losses of one `fit` run."""

    # mean training objective (reconstruction + penalty)
    train_loss: list[float] = field(default_factory=list)
    # reconstruction loss on the clean validation set
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run
    # fit(track=...)'s numbers, one per epoch
    tracked: dict[str, list[float]] = field(default_factory=dict)
    # where it ran (`devices.describe`): the seconds are that device's
    trained_on: dict[str, str] = field(default_factory=dict)

    @property
    def best_epoch(self) -> int:
        """The epoch (from 1) with the lowest validation loss; 0 without validation
        losses."""
        return self.val_loss.index(min(self.val_loss)) + 1 if self.val_loss else 0

    def to_dict(self) -> dict:
        return {
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "seconds": self.seconds,
            "tracked": {k: list(v) for k, v in self.tracked.items()},
            "trained_on": dict(self.trained_on),
        }


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch in one place."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def reconstruction_loss(
    r: torch.Tensor,
    x: torch.Tensor,
    loss: str = "mse",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over batch and pixels. r, x: (B, D); ``weight`` (D,), if given, scales each
    dimension's error (a toy model's feature importance), still divided by D."""
    if loss == "mse":
        return F.mse_loss(r, x) if weight is None else ((r - x).pow(2) * weight).mean()
    if loss == "bce":
        return F.binary_cross_entropy(
            r, x, weight=None if weight is None else weight.expand_as(r)
        )
    raise ValueError(
        f"unknown loss {loss!r}; choose one of {', '.join(map(repr, LOSSES))}"
    )


def as_float_data(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` as a float32 tensor (float64 and float16 are converted); integer images are
    refused.

    uint8 images would silently train on values up to 255: the caller has to say how to
    scale.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float32)"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{name} has dtype {x.dtype}; the models need floats in [0, 1]: "
            f"for 8-bit images pass {name}.float() / 255"
        )
    return x if x.dtype == torch.float32 else x.float()


def _check_data(x: torch.Tensor, name: str, width: int | None = None) -> None:
    if x.ndim != 2:
        hint = (
            f"flatten images first: {name}.reshape(len({name}), -1)"
            if x.ndim > 2
            else f"a single image needs a batch axis: {name}.reshape(1, -1)"
        )
        raise ValueError(f"{name} must be (N, D), got shape {tuple(x.shape)}; {hint}")
    if len(x) == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(x.shape)}): there is nothing to train on"
        )
    if width is not None and x.shape[1] != width:
        raise ValueError(
            f"{name} must be (M, {width}) like train_x, got {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{name} holds {bad} NaN or infinite values; clean the data first "
            f"(for example {name}.nan_to_num(0.0)), or the model trains to NaN"
        )


def _check_fit_args(
    model: nn.Module,
    train_x: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    loss: str,
    schedule: str,
    val_x: torch.Tensor | None,
    patience: int | None,
    loss_weight: torch.Tensor | None,
    objective: Objective | None = None,
    hooks: Mapping[str, object] | None = None,
) -> None:
    _check_data(train_x, "train_x")
    clashing = [name for name, hook in (hooks or {}).items() if hook is not None]
    if objective is not None and (clashing or val_x is not None):
        raise ValueError(
            "objective replaces the reconstruction loss, so it cannot be combined with "
            f"{', '.join(clashing + ['val_x'] * (val_x is not None))}; put any extra "
            "term inside the objective, and watch held-out data with track"
        )
    if loss_weight is not None and (
        not isinstance(loss_weight, torch.Tensor)
        or loss_weight.shape != train_x.shape[1:]
        or not bool((loss_weight >= 0).all() & torch.isfinite(loss_weight).all())
    ):
        raise ValueError(
            f"loss_weight must be a tensor of {train_x.shape[1]} finite weights >= 0, "
            "one per dimension "
            f"of train_x, got {getattr(loss_weight, 'shape', loss_weight)!r}"
        )
    if val_x is not None:
        _check_data(val_x, "val_x", train_x.shape[1])
    if epochs < 1 or batch_size < 1 or not 0 < lr < math.inf:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1 and a finite lr > 0; got {epochs}, "
            f"{batch_size}, {lr}"
        )
    if loss not in LOSSES:
        raise ValueError(
            f"unknown loss {loss!r}; choose one of {', '.join(map(repr, LOSSES))}"
        )
    if schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {schedule!r}; choose one of "
            f"{', '.join(map(repr, SCHEDULES))}"
        )
    if patience is not None and (val_x is None or patience < 1):
        raise ValueError(
            f"early stopping needs val_x and patience >= 1; got patience={patience}"
            f"{'' if val_x is not None else ' and no val_x'}"
        )
    if (
        loss == "bce"
        and getattr(getattr(model, "config", None), "out", "sigmoid") != "sigmoid"
    ):
        raise ValueError(
            "loss='bce' needs outputs in [0, 1]: build the model with out='sigmoid'"
        )


def adam(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over ``model``'s parameters, with the fused update on CPU and CUDA (PyTorch
    >= 2.4).

    On two CPU cores the fused update trains the deep chapter's network about 30% faster
    than the default one, and it is as deterministic. Other devices get the default
    update.
    """
    params = list(model.parameters())
    fused = all(
        computes_as(p.device) in ("cpu", "cuda") and p.is_floating_point()
        for p in params
    )
    return torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay, fused=fused or None
    )


def fit(
    model: nn.Module,
    train_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    loss: str = "mse",
    weight_decay: float = 0.0,
    schedule: str = "constant",
    val_x: torch.Tensor | None = None,
    patience: int | None = None,
    penalty: Penalty | None = None,
    corrupt: Corruption | None = None,
    device: str = "auto",
    progress: bool = True,
    augment: Augmentation | None = None,
    track: Tracker | None = None,
    loss_weight: torch.Tensor | None = None,
    objective: Objective | None = None,
) -> History:
    """Train ``model`` (with ``encode``/``decode``) to reconstruct ``train_x`` (N, D)
    with Adam.

    Each step minimises ``L(x, g(f(x~))) + Omega(h)`` where ``x~ = corrupt(x)`` (or x)
    and ``Omega = penalty(model, x~, h)`` (or 0). With ``augment``, each batch is first
    replaced by ``augment(x)`` (randomly shifted images, say), which is then both the
    input and the target. ``track(model)``, if given, is called after every epoch with
    the model in eval mode; the numbers it returns are kept in ``history.tracked`` (it
    should draw any randomness from its own generator, so that watching a run does not
    change it). ``loss_weight`` (D,) weighs each dimension's reconstruction error, in
    training and validation: a toy model's feature importance. ``schedule="cosine"``
    anneals the learning rate from ``lr`` to zero over the run, which lets a model
    settle into its optimum instead of jittering around it at a constant step size.
    ``objective(model, x, generator)``, if given, is the whole loss of a batch x (B, D)
    instead: the hook for a model whose target is not its input (a diffusion model's
    noise prediction, `aebook.diffusion`); it cannot be combined with the
    reconstruction's own hooks (penalty, corrupt, loss_weight, val_x). The hooks get
    fit's generator, a CPU one whatever the device: they draw through `aebook.draws`.
    Batches are sliced from the in-memory tensor in an order drawn from ``seed``, so on
    the CPU the same seed, the same initial weights and the same number of threads give
    bit-identical losses (another thread count can change the last bits of a sum). The
    model is left in eval mode on ``device`` (``"auto"``: the chapter's, see
    `devices.resolve_device`). Denormal floats are flushed to zero (see
    ``flush_denormals``).

    Bad input is a ValueError that says what to do: empty data, data with NaN or inf,
    integer images. NumPy scalars are taken as numbers and float64 data as float32. A
    loss that turns NaN or infinite stops the run with a FloatingPointError naming the
    epoch.

    Early stopping: with ``patience`` (and ``val_x``), training stops once the
    validation loss has not improved for ``patience`` epochs, and the model gets back
    the weights of its best epoch (``history.best_epoch``). The cosine schedule still
    spans all ``epochs``.
    """
    train_x = as_float_data(train_x, "train_x")
    val_x = as_float_data(val_x, "val_x") if val_x is not None else None
    epochs, batch_size, seed = (
        _as_int(v, n)
        for v, n in ((epochs, "epochs"), (batch_size, "batch_size"), (seed, "seed"))
    )
    lr, weight_decay = float(lr), float(weight_decay)
    if patience is not None:
        patience = _as_int(patience, "patience")
    _check_fit_args(
        model,
        train_x,
        epochs,
        batch_size,
        lr,
        loss,
        schedule,
        val_x,
        patience,
        loss_weight,
        objective,
        dict(penalty=penalty, corrupt=corrupt, loss_weight=loss_weight),
    )
    dev = resolve_device(device)  # which also flushes denormals
    weight = loss_weight.to(dev, torch.float32) if loss_weight is not None else None
    torch.manual_seed(seed)  # for any global-RNG use inside a penalty or corruption
    # A CPU generator on every device: the batch order and the hooks' draws
    # (`draws.randn` and friends draw on it, then move) are the CPU run's, and a
    # device without generators of its own can train too.
    gen = torch.Generator().manual_seed(seed)
    model.to(dev)
    x_all = train_x.to(dev)
    x_val = val_x.to(dev) if val_x is not None else None
    opt = adam(model, lr=lr, weight_decay=weight_decay)
    history = History(trained_on=describe(dev))
    n = len(x_all)
    steps = epochs * -(-n // batch_size)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        if schedule == "cosine"
        else None
    )
    start = time.perf_counter()
    # the weights at the lowest validation loss (early stopping)
    best: dict[str, torch.Tensor] | None = None
    bar = _progress(epochs, enabled=progress)
    for epoch in range(epochs):
        model.train()
        total = torch.zeros((), device=dev)  # summed on the device: no sync per batch
        for idx in torch.randperm(n, generator=gen).to(dev).split(batch_size):
            x = x_all[idx] if augment is None else augment(x_all[idx], gen)
            if objective is not None:
                batch_loss = _scalar(objective(model, x, gen), "objective", objective)
            else:
                x_in = corrupt(x, gen) if corrupt is not None else x
                h = model.encode(x_in)
                batch_loss = reconstruction_loss(model.decode(h), x, loss, weight)
                if penalty is not None:
                    batch_loss = batch_loss + _scalar(
                        penalty(model, x_in, h), "penalty", penalty
                    )
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += batch_loss.detach() * len(idx)
        history.train_loss.append(total.item() / n)
        if x_val is not None:
            history.val_loss.append(
                evaluate(model, x_val, loss=loss, loss_weight=weight)
            )
        if track is not None:
            _record(history, track, model, epoch)
        if not all(
            math.isfinite(v) for v in (history.train_loss[-1], *history.val_loss[-1:])
        ):
            if bar is not None:
                bar.close()
            raise FloatingPointError(
                f"the loss became NaN or infinite in epoch {epoch + 1} of {epochs} "
                f"(lr={lr}); the weights are "
                f"no longer usable. Try a smaller lr (for example {lr / 10:g}), check "
                "the data for extreme "
                "values, or a penalty for a large weight, then train a freshly built "
                "model"
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(_postfix(history))
        if patience is not None:
            if history.best_epoch == epoch + 1:
                best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch + 1 - history.best_epoch >= patience:
                break
    if best is not None:
        model.load_state_dict(best)
    if bar is not None:
        # a run that stopped early finished; tqdm would draw it as failed
        bar.total = bar.n
        bar.close()
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def _scalar(value: object, what: str, hook: object) -> torch.Tensor:
    """``value`` if it is a 0-d tensor, else a ValueError naming the ``hook`` that
    returned it."""
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        raise ValueError(
            f"the {what} must return a scalar tensor (a 0-d tensor, e.g. .sum() or "
            f".mean() of its terms), got {tuple(getattr(value, 'shape', ()))!r} from "
            f"{hook!r}"
        )
    return value


def _record(history: History, track: Tracker, model: nn.Module, epoch: int) -> None:
    """Append the numbers ``track(model)`` returns after ``epoch`` (from 0) to
    ``history.tracked``."""
    model.eval()
    with torch.no_grad():
        numbers = dict(track(model))
    if epoch == 0:
        history.tracked.update({name: [] for name in numbers})
    if set(numbers) != set(history.tracked):
        raise ValueError(
            "track must return the same names after every epoch; after epoch "
            f"{epoch + 1} it "
            f"returned {sorted(numbers)}, before {sorted(history.tracked)}"
        )
    for name, value in numbers.items():
        history.tracked[name].append(float(value))


def _as_int(value: object, name: str) -> int:
    """A Python int from an int or a NumPy integer; anything else (2.5, "5", True) is a
    ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a whole number, got {value!r} ({type(value).__name__})"
        ) from None


def _postfix(history: History) -> dict[str, str]:
    post = {"loss": f"{history.train_loss[-1]:.4f}"}
    if history.val_loss:
        post["val"] = f"{history.val_loss[-1]:.4f}"
    return post


def _progress(epochs: int, enabled: bool):
    """A bar counting epochs (a widget in notebooks, text in a terminal), or None when
    disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc="epochs", leave=True)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    *,
    loss: str = "mse",
    batch_size: int = 2048,
    loss_weight: torch.Tensor | None = None,
) -> float:
    """Mean reconstruction loss of ``model`` on ``x`` (N, D), as a float (weighted as
    `fit`'s ``loss_weight``), computed where the model is."""
    x = as_float_data(x, "x")
    r = reconstruct(model, x, batch_size=batch_size)
    weight = loss_weight.cpu().float() if loss_weight is not None else None
    return reconstruction_loss(r, x.cpu(), loss, weight).item()


@torch.no_grad()
def reconstruct(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 2048
) -> torch.Tensor:
    """g(f(x)) for x (N, D), in eval mode and in batches where the model is; returned
    on the CPU."""
    return batched(model, x, lambda m, b: m(b), batch_size)


@torch.no_grad()
def encode(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 2048
) -> torch.Tensor:
    """The codes f(x), (N, k), in eval mode and in batches where the model is;
    returned on the CPU."""
    return batched(model, x, lambda m, b: m.encode(b), batch_size)


def batched(
    model: nn.Module,
    x: torch.Tensor,
    fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    batch_size: int,
) -> torch.Tensor:
    """``fn(model, batch)`` over x (N, D) in batches of ``batch_size``, in eval mode,
    where the model is: each batch is moved to the model's device, each result (B, ...)
    back to the CPU, and the results are concatenated, (N, ...).

    The model is not moved (a chapter that put it on the CPU finds it there), and its
    training mode is restored afterwards, also when ``fn`` raises. The caller chooses
    whether gradients are tracked (the package's callers use no_grad).
    """
    x = as_float_data(x, "x")
    dev = model_device(model)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([fn(model, b.to(dev)).cpu() for b in x.split(batch_size)])
    finally:
        model.train(was_training)
