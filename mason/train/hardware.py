"""What this machine can do for training, decided at run time from measurements, not assumptions.

- **bf16 autocast** only where bf16 matmuls are really faster than fp32 here: CUDA with bf16, or a
  CPU where a short `torch.matmul` timing (about 0.1 s, once per process) shows bf16 at least
  `BF16_MIN_SPEEDUP` times fp32. CPUs differ: AMX or AVX512-BF16 Xeons run bf16 matmuls 2x or more
  faster (measured 432 vs 201 GFLOP/s on an AVX512-BF16 Xeon without AMX), while AVX2-only CPUs
  emulate bf16 and would run slower with it on.
- **Gradient checkpointing** (`gradient_checkpointing: auto`) only when the activations of one batch
  would not fit in the memory that is free: it recomputes the forward pass (about 30% slower).
- **Peak memory** of the process (resident set), for the train report.

torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: bf16 autocast turns on (under `bf16: auto`) where a bf16 matmul is at least this much faster.
BF16_MIN_SPEEDUP = 1.3


def _matmul_seconds(dtype: Any, n: int = 768, repeats: int = 4) -> float:
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm the kernel up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """How many times faster a bf16 matmul runs than an fp32 one on this CPU (measured once)."""
    import torch

    return _matmul_seconds(torch.float32) / _matmul_seconds(torch.bfloat16)


def bf16_native() -> bool:
    """True where bf16 matmuls are fast: CUDA with bf16, or a CPU where bf16 measures faster than fp32
    (on the device training runs on: `training.device`, see `training_device`)."""
    import torch

    from mason.models.device import device_kind

    if device_kind().startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    if device_kind() != "cpu":  # Apple MPS: autocast there is not measured, stay in fp32
        return False
    return cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


def use_bf16(setting: str | bool | None) -> bool:
    """Resolve a `bf16: auto|true|false` setting (None = auto)."""
    if setting is None or setting == "auto":
        return bf16_native()
    return setting in (True, "true")


def free_memory_bytes() -> int | None:
    """Memory available for new work: the GPU's free memory under CUDA, else the system's
    MemAvailable (Linux); None where it cannot be read."""
    import torch

    from mason.models.device import device_kind

    if device_kind().startswith("cuda"):
        free, _ = torch.cuda.mem_get_info()  # of the current device (`training_device` sets it)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def activation_bytes(config: Any, batch: int, length: int, bytes_per_value: int, scores: bool = True) -> int:
    """Activations kept for the backward pass of one batch of a decoder (Korthikanti et al. 2022:
    about `34·s·b·h` bytes per layer at 16 bits, plus `5·a·s²·b` for the attention scores where the
    attention keeps them (`scores`: eager attention; SDPA/flash kernels do not), scaled to
    `bytes_per_value`), plus the LM head's logits: about five fp32 copies of them live at the peak
    (logits, their autocast copy, log-softmax, gradients; bench/memory.py measured 1.65 GiB per
    512-token row on a 152k vocabulary, where the layers' activations take about 0.4)."""
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    per_layer = 34 * length * batch * hidden + (5 * heads * length * length * batch if scores else 0)
    return int((per_layer * layers * bytes_per_value) // 2 + batch * length * vocab * 4 * 5)


@dataclass
class CheckpointingChoice:
    """Whether gradient checkpointing is on, and the sentence that says why."""

    on: bool
    reason: str


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def choose_checkpointing(setting: bool | str, model: Any, batch: int, length: int,
                         bf16: bool = False) -> CheckpointingChoice:
    """Resolve `gradient_checkpointing: auto|true|false` for `model` at `batch` x `length` tokens
    (`length`: the longest row the batches will hold; `bf16`: activations kept in bf16 by autocast).

    `auto` turns it on only when the estimated activations plus the model's weights, gradients and
    optimizer state would take more than 80% of the free memory.
    """
    if setting is True or setting == "true":
        return CheckpointingChoice(True, "gradient checkpointing on (training.gradient_checkpointing: true)")
    if setting is False or setting == "false":
        return CheckpointingChoice(False, "no gradient checkpointing (training.gradient_checkpointing: false)")
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    trained = sum(p.numel() for p in params if p.requires_grad)
    state = trained * 4 * 3  # fp32 gradient + two AdamW moments
    dtype_bytes = 2 if bf16 or any(p.element_size() == 2 for p in params[:4]) else 4
    scores = getattr(model.config, "_attn_implementation", "eager") in (None, "eager")
    acts = activation_bytes(model.config, batch, length, dtype_bytes, scores)
    need, free = weights + state + acts, free_memory_bytes()
    if free is None:
        return CheckpointingChoice(False, f"no gradient checkpointing (free memory unknown; activations ~{_gib(acts)})")
    if need > 0.8 * free:
        return CheckpointingChoice(True, f"gradient checkpointing on: training needs ~{_gib(need)} "
                                         f"(activations ~{_gib(acts)}) of {_gib(free)} free")
    return CheckpointingChoice(False, f"no gradient checkpointing: ~{_gib(need)} needed of {_gib(free)} free")


@contextlib.contextmanager
def training_device(setting: str | None) -> Iterator[str]:
    """Train on `setting` (`training.device`) while the block runs: `device_kind()` answers it inside
    (model dtype, bf16, free memory, `use_cpu`), and a `cuda:N` becomes torch's current CUDA device
    (where 4-bit weights load). Under torchrun each process keeps its own GPU: the setting is ignored.

    Raises:
        InputError: a device this machine does not have (the message lists the ones it has).
    """
    from mason.core import distributed
    from mason.models.device import use_device

    if distributed.world_size() > 1:
        if setting not in (None, "auto"):
            from mason.core.console import warn

            warn(f"training.device: {setting} is ignored under torchrun: each process trains on its own GPU")
        yield "auto"
        return
    with use_device(setting) as device:
        if setting not in (None, "auto"):
            from mason.core.console import info

            info(f"  device: {device}")
        if device.startswith("cuda:"):
            import torch

            torch.cuda.set_device(device)
        yield device


def pin_device(args: Any) -> Any:
    """Make transformers `TrainingArguments` train on the `cuda:N` of `training_device`: on its own,
    a single process trains on cuda:0 and spreads batches over every visible GPU (DataParallel).
    Other devices are left to transformers (`use_cpu` covers the CPU). Returns `args`."""
    from mason.core import distributed
    from mason.models.device import device_kind

    device = device_kind()
    if not device.startswith("cuda:") or distributed.world_size() > 1:
        return args
    import torch

    torch.cuda.set_device(device)  # building the arguments selected cuda:0; accelerate follows the current one
    args.__dict__["_setup_devices"] = torch.device(device)  # the cached property `args.device` reads
    args._n_gpu = 1
    return args


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (0.0 where it cannot be read)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
