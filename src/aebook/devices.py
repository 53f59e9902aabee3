"""Where the book computes: the chapter's device, chosen once; where a model is; what a
run records about its device.

The rule the package keeps: nothing moves a model behind the caller's back. A chapter
picks its device once (`notebook.setup`, or ``AEBOOK_DEVICE``), `fit` trains where it
is told, and the helpers that run a model (`training.encode`, ``evaluate``, ...) run it
where it is, move their inputs to it and hand back CPU tensors.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

ENV = "AEBOOK_DEVICE"
# the device "auto" means once a chapter has chosen one (`use`); None: not chosen yet
_chosen: torch.device | None = None


def flush_denormals() -> None:
    """Make the CPU treat floats below float32's normal range (1.2e-38) as zero.

    Late in a long run, the smallest gradients and Adam's moments sink into that range,
    where every CPU operation on them is many times slower: chapter 6's 150-epoch
    network took 0.41 s an epoch at the start and 0.66 s at the end, 90 s in all, and 53
    s with them flushed, its losses unchanged in every printed digit. It is a per-thread
    CPU setting that new threads inherit, so it has to come before PyTorch starts its
    worker threads (the first large operation): ``resolve_device``, every chapter's
    first call, makes it. It does nothing on a GPU.
    """
    torch.set_flush_denormal(True)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device named ``device``; a device this machine lacks is a ValueError.

    ``"auto"`` is the chapter's device if one was chosen (`use`), else the one
    ``AEBOOK_DEVICE`` names, else CUDA where there is a GPU, else the CPU. Apple's MPS
    is used only when named: no chapter has been run on it (it has no float64). A CUDA
    device is made repeatable first (`deterministic_cuda`). Denormal floats are flushed
    to zero (``flush_denormals``), before any computation.
    """
    flush_denormals()
    if str(device) == "auto":
        if _chosen is not None:
            return _chosen
        device = os.environ.get(ENV, "").strip() or "auto"
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', 'cuda' or "
            f"'mps' (here or in {ENV})"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but this machine has no CUDA GPU; use "
                "device='auto', which takes a GPU where there is one and the CPU "
                f"elsewhere (check {ENV} too)"
            )
        deterministic_cuda()
    elif dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device={device!r} but Apple's MPS is not available here; use "
            "device='auto'"
        )
    elif dev.type not in ("cpu", "cuda", "mps") and not hasattr(torch, dev.type):
        raise ValueError(f"device={device!r}: no backend called {dev.type!r} is loaded")
    return dev


def use(device: str | torch.device = "auto") -> torch.device:
    """Choose the device ``"auto"`` means from now on (a chapter's setup calls it
    once) and return it."""
    global _chosen
    # "auto" here means the environment's choice, not the previous one
    previous, _chosen = _chosen, None
    try:
        _chosen = resolve_device(device)
    except ValueError:
        _chosen = previous  # a bad name leaves the earlier choice in place
        raise
    return _chosen


def deterministic_cuda() -> None:
    """Same seed, same numbers on a GPU too: cuDNN's deterministic kernels, no
    autotuning, no TF32, and cuBLAS's fixed workspace (read when cuBLAS starts, so it is
    set before the first CUDA operation). An operation with no deterministic version
    warns instead of stopping the chapter."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # TF32 rounds a float32 matmul's inputs to 10 bits on Ampere and newer (L4, A100)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.use_deterministic_algorithms(True, warn_only=True)


def describe(device: torch.device) -> dict[str, str]:
    """Where a run ran, for the cache and the claim records: the device, the GPU's
    name on CUDA, and torch's version."""
    where = {"device": device.type, "torch": torch.__version__.split("+")[0]}
    if device.type == "cuda":
        where["gpu"] = torch.cuda.get_device_name(device)
    return where


def label(where: dict[str, str]) -> str:
    """A device for the prose, from `describe`'s record (a History's ``trained_on``):
    ``"CPU"``, ``"GPU (NVIDIA L4)"``, or the device's own name."""
    device = where.get("device", "unrecorded device")
    if device == "cpu":
        return "CPU"
    return f"GPU ({where['gpu']})" if "gpu" in where else device


def computes_as(device: torch.device) -> str:
    """The device whose numbers ``device`` gives: its own type, or what a test device
    declares (``tests/standin.py`` computes on the CPU bit for bit, so it shares the
    CPU's cached models)."""
    module = getattr(torch, device.type, None)
    return getattr(module, "COMPUTES_AS", device.type)


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters (or buffers) are; the CPU for a model with
    neither."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")
