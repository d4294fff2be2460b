"""Git LFS pointer files where model weights should be.

A repository cloned without Git LFS holds, in place of each large file, a ~130-byte text file:

    version https://git-lfs.github.com/spec/v1
    oid sha256:4d7a...
    size 538976288

Loading one as weights fails deep in a library ("header too large", "not a GGUF file"); these
checks name the problem and the fix (`git lfs pull`) before anything reads the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mason.core.errors import ModelNotFoundError

LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"
#: Pointer files are about 130 bytes; the spec caps them at 1024.
MAX_POINTER_BYTES = 1024
#: Files of a model folder worth checking: weights, and the tokenizer files LFS often stores too.
MODEL_FILE_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.pt", "*.pth", "*.gguf", "tokenizer.json",
                       "tokenizer.model", "*.onnx", "*.onnx.data", "*.npz")


def lfs_pointer_size(path: Path) -> int | None:
    """The size (bytes) the real file has when `path` is a Git LFS pointer, 0 when the pointer does
    not say; None when `path` is not a pointer (or cannot be read)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_POINTER_BYTES:
            return None
        head = path.read_bytes()
    except OSError:
        return None
    if not head.startswith(LFS_SIGNATURE):
        return None
    for line in head.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "size" and value.strip().isdigit():
            return int(value.strip())
    return 0


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def check_not_lfs_pointer(paths: Path | Iterable[Path]) -> None:
    """Fail when any of `paths` is a Git LFS pointer instead of the file itself.

    Raises:
        ModelNotFoundError: names the pointer file(s), the real size, and `git lfs pull`.
    """
    items = [paths] if isinstance(paths, Path) else list(paths)
    found = [(p, size) for p in items if (size := lfs_pointer_size(p)) is not None]
    if not found:
        return
    first, size = found[0]
    more = f" (and {len(found) - 1} more: {', '.join(p.name for p, _ in found[1:4])})" if len(found) > 1 else ""
    real = f"; the real file is {_size(size)}" if size else ""
    raise ModelNotFoundError(
        f"{first} is a Git LFS pointer, not the model file{more}: a {first.stat().st_size}-byte text file "
        f"that stands for it{real}. The repository was cloned or copied without Git LFS",
        hint=f"fetch the files: `git lfs install && git lfs pull` in the repository of {first.parent} "
             "(or download the model again with Git LFS installed)",
    )


def check_model_folder(folder: Path) -> None:
    """`check_not_lfs_pointer` on the weight and tokenizer files of a model folder.

    Raises:
        ModelNotFoundError: one of them is a Git LFS pointer.
    """
    files = sorted({p for pattern in MODEL_FILE_PATTERNS for p in folder.glob(pattern)})
    check_not_lfs_pointer(files)
