"""Where models run: the one place that picks CUDA, Apple MPS or the CPU."""

from __future__ import annotations


def device_kind(device: str | None = None) -> str:
    """`device` when given, else "cuda" when available, else "mps", else "cpu" (torch imported here)."""
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
