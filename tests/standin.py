"""A stand-in GPU for machines without one: a second device, ``standin``, that computes
on the CPU bit for bit and fails where CUDA fails.

Test tooling, not part of the book: it rests on private PyTorch APIs (a Python backend
on the PrivateUse1 dispatch key), so it runs under the lock file's torch, and
`tests/test_devices.py` checks after every upgrade that it still refuses to mix
devices. Importing it registers the device; ``AEBOOK_DEVICE=standin`` then makes it the
book's device, as ``auto`` picks CUDA on a GPU runtime.

What it reproduces, in CUDA's words: an operation mixing a stand-in tensor with a CPU
tensor (0-d CPU tensors excepted, which CUDA takes as numbers, and CPU index tensors,
which CUDA moves), ``.numpy()`` on a stand-in tensor, and a CPU generator passed to a
draw on the stand-in. Like a tensor on a GPU, a stand-in tensor must be brought back
with ``.cpu()`` before NumPy, Matplotlib or scikit-learn can read it.

Each operation unwraps its stand-in arguments to the CPU tensors they hold, runs the CPU
kernel on them and wraps the results, so every number is the CPU's. That costs a Python
call per operation: it is several times slower than the CPU, so the book runs only its
analysis on it, with the models the CPU pass trained (`COMPUTES_AS` lets the cache
share them).
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

NAME = "standin"
aten = torch.ops.aten


class _Backend:
    """``torch.standin``: what PyTorch asks a backend's module."""

    # the cache shares the CPU's models: every number here is the CPU's
    COMPUTES_AS = "cpu"

    def is_initialized(self) -> bool:
        return True

    def is_available(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def _is_in_bad_fork(self) -> bool:
        return False

    def manual_seed_all(self, seed: int) -> None:
        pass

    def device_count(self) -> int:
        return 1


if torch._C._get_privateuse1_backend_name() != NAME:  # once per process
    _setup_privateuseone_for_python_backend(rename=NAME, backend_module=_Backend())
DEVICE = torch.device(NAME, 0)


def _mixing(devices: set[str]) -> RuntimeError:
    other = sorted(d for d in devices if d != NAME)[0]
    return RuntimeError(
        "Expected all tensors to be on the same device, but found at least two "
        f"devices, {DEVICE} and {other}!"
    )


def _unwrap(a: object) -> object:
    return a._data if isinstance(a, StandinTensor) else a


def _wrap(a: object) -> object:
    if isinstance(a, torch.Tensor) and not isinstance(a, StandinTensor):
        return StandinTensor(a)
    return a


# operations whose CPU index tensors CUDA moves to the device instead of refusing
_INDEXING = {
    aten.index.Tensor,
    aten.index_put.default,
    aten.index_put_.default,
    aten._index_put_impl_.default,
}


class StandinTensor(torch.Tensor):
    """A tensor on the stand-in device, holding the CPU tensor with its values."""

    _data: torch.Tensor

    @staticmethod
    def __new__(cls, data: torch.Tensor) -> StandinTensor:
        out = torch.Tensor._make_wrapper_subclass(
            cls,
            data.size(),
            strides=data.stride(),
            storage_offset=data.storage_offset(),
            dtype=data.dtype,
            layout=data.layout,
            device=DEVICE,
            requires_grad=False,
        )
        out._data = data
        return out

    def __repr__(self, *, tensor_contents: object = None) -> str:
        return f"{self._data!r} on {DEVICE}"

    def numpy(self, *, force: bool = False) -> object:
        raise TypeError(
            f"can't convert {DEVICE} device type tensor to numpy. Use Tensor.cpu() to "
            "copy the tensor to host memory first."
        )

    def __array__(self, dtype: object = None, copy: object = None) -> object:
        return self.numpy()

    def __format__(self, spec: str) -> str:
        # a 0-d tensor formats as its number, on CUDA too (torch's own check excludes
        # subclasses)
        return (
            self.item().__format__(spec)
            if self.dim() == 0
            else super().__format__(spec)
        )

    def tolist(self) -> object:
        return self._data.tolist()

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is aten.copy_.default:  # a copy crosses devices, as on CUDA
            dst, src = args[0], args[1]
            _unwrap(dst).copy_(_unwrap(src), *args[2:], **kwargs)
            return dst
        if func is aten._to_copy.default:  # .to(...), .cpu()
            out = func(_unwrap(args[0]), **{**kwargs, "device": None})
            dev = kwargs.get("device")
            return (
                out
                if dev is not None and torch.device(dev).type != NAME
                else _wrap(out)
            )
        flat, _ = tree_flatten((args[1:] if func in _INDEXING else args, kwargs))
        devices = {
            NAME if isinstance(a, StandinTensor) else a.device.type
            for a in flat
            if isinstance(a, torch.Tensor) and (isinstance(a, StandinTensor) or a.dim())
        }
        if func in _INDEXING:
            if not isinstance(args[0], StandinTensor):  # stand-in indices, CPU tensor
                raise RuntimeError(
                    "indices should be either on cpu or on the same device as the "
                    "indexed tensor (cpu)"
                )
            devices = {NAME}
        if len(devices) > 1:
            raise _mixing(devices)
        for g in flat:
            if isinstance(g, torch.Generator) and g.device.type != NAME:
                raise RuntimeError(
                    f"Expected a '{NAME}' device type for generator but found "
                    f"'{g.device.type}'"
                )
        unwrapped_args = tree_map(_unwrap, args)
        unwrapped_kwargs = tree_map(_unwrap, kwargs)
        if "device" in unwrapped_kwargs:
            unwrapped_kwargs["device"] = torch.device("cpu")
        out = func(*unwrapped_args, **unwrapped_kwargs)
        # an in-place operation returns its first argument, which is the wrapper
        if (
            func._schema.is_mutable
            and isinstance(out, torch.Tensor)
            and out is unwrapped_args[0]
        ):
            return args[0]
        return tree_map(_wrap, out)


# Factory and copy operations reach the backend's dispatch key without a stand-in
# argument, so they are registered for it directly.
def _empty(
    size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None
):  # noqa: ANN001, E501
    return StandinTensor(torch.empty(size, dtype=dtype, layout=layout))


def _empty_strided(size, stride, dtype=None, layout=None, device=None, pin_memory=None):  # noqa: ANN001, E501
    return StandinTensor(torch.empty_strided(size, stride, dtype=dtype, layout=layout))


def _copy_from(src, dst, non_blocking=False):  # noqa: ANN001
    _unwrap(dst).copy_(_unwrap(src))
    return dst


def _copy_from_and_resize(src, dst):  # noqa: ANN001
    s = _unwrap(src)
    _unwrap(dst).resize_(s.shape).copy_(s)
    return dst


_LIB = torch.library.Library("aten", "IMPL")
for _name, _fn in (
    ("empty.memory_format", _empty),
    ("empty_strided", _empty_strided),
    ("_copy_from", _copy_from),
    ("_copy_from_and_resize", _copy_from_and_resize),
):
    try:
        _LIB.impl(_name, _fn, "PrivateUse1")
    except RuntimeError:  # registered already, by an earlier import under another name
        pass
