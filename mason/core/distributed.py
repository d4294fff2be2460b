"""Which process this is under `torchrun` / `accelerate launch` (read from the environment).

Under a multi-process launch every process runs `mason run`; process 0 (the main process) owns
the workspace: the lock, the tracker, manifests and every output file. The others train beside it
and write nothing but what the Trainer itself writes per rank (RNG states in checkpoints).
"""

from __future__ import annotations

import os


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank() -> int:
    """This process's global rank (0 without a launcher)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_main() -> bool:
    """True in the process that writes outputs (rank 0, or the only process)."""
    return rank() == 0


def launch_token() -> str | None:
    """An id shared by the processes of one launch and different between launches (None alone)."""
    if world_size() == 1:
        return None
    parts = [os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")]
    return ":".join(parts)


def barrier() -> None:
    """Wait for every process (a no-op alone or before torch.distributed is initialised)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
