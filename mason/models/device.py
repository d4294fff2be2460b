"""Where models run: the one place that picks CUDA, Apple MPS or the CPU.

A device setting (`training.device`, `evaluation.device`, `mason chat --device`) is one of
`auto` (CUDA when available, else MPS, else the CPU), `cpu`, `cuda`, `cuda:N` or `mps`.

- `check_device_name(value)`: the spelling, without importing torch (config validators, the CLI).
- `device_kind(setting)`: the device to use; a device this machine does not have fails with one
  message that lists the ones it has.
- `use_device(setting)`: scopes a setting for a block of work (a training stage), so code that asks
  `device_kind()` without an argument inside it gets that device instead of the automatic choice.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar

from mason.core.errors import InputError

#: The accepted device settings, in words (for help texts and error messages).
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (N: a GPU's index) or mps"
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_scoped: ContextVar[str | None] = ContextVar("mason_device", default=None)


def check_device_name(value: str) -> str:
    """`value` normalized (trimmed, lower case) when it is a device setting MASON knows.

    Raises:
        ValueError: anything else (the message lists the accepted settings).
    """
    text = str(value).strip().lower()
    if not _DEVICE.match(text):
        raise ValueError(f"unknown device {value!r}: use {DEVICE_CHOICES}")
    return text


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The devices PyTorch can use here, best first: `cuda` and each `cuda:N`, `mps`, `cpu`."""
    import torch

    out = []
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out + ["cpu"]


def _detect() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return "cpu"


def device_kind(device: str | None = None) -> str:
    """The device to run on for the setting `device`.

    None or `auto`: the device scoped by `use_device` when one is, else "cuda" when available,
    else "mps", else "cpu". Any other setting is checked against this machine (torch imported here;
    `cpu` needs no check).

    Raises:
        InputError: an unknown setting, or a device this machine does not have (the message names
            the ones it has).
    """
    if device is None or str(device).strip().lower() == "auto":
        return _scoped.get() or _detect()
    try:
        name = check_device_name(device)
    except ValueError as e:
        raise InputError(str(e)) from None
    if name == "cpu":
        return name
    have = available_devices()
    if name in have:
        return name
    if name.startswith("cuda") and "cuda" not in have:
        why = "PyTorch sees no CUDA GPU here (no NVIDIA GPU or driver, or a CPU-only torch build)"
    elif name.startswith("cuda:"):
        why = f"this machine has {sum(d.startswith('cuda:') for d in have)} CUDA GPU(s), numbered from 0"
    else:
        why = "Apple's Metal (MPS) backend is not available here"
    raise InputError(f"device {name!r} is not available: {why}; available: {', '.join(have)}",
                     hint="set the device to one of those, or to `auto` (the best one available)")


@contextlib.contextmanager
def use_device(device: str | None) -> Iterator[str]:
    """Run the block on `device` (None or `auto`: the automatic choice): inside it, `device_kind()`
    returns that device. Yields the device.

    Raises:
        InputError: see `device_kind`.
    """
    name = device_kind(device)
    token = _scoped.set(name)
    try:
        yield name
    finally:
        _scoped.reset(token)
