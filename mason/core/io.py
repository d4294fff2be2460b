"""Durable file I/O: atomic writes (temp + fsync + rename) and crash-safe JSONL appends.

A JSONL file written with `JsonlWriter` survives `kill -9`: every `write` is followed by a
flush, `sync()` fsyncs, and on reopening with `resume=True` a partial last line (the only
thing a kill can leave behind) is cut off.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mason.core.errors import InputError


def _fsync_dir(path: Path) -> None:
    # note: the rename is only durable once the directory entry itself is on disk
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write `obj` as JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n")


def repair_jsonl_tail(path: str | Path) -> int:
    """Cut a partial last line (no trailing newline, or not valid JSON) off a JSONL file.

    Returns the number of bytes removed (0 when the file was clean or does not exist).
    """
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        # find the start of the last line
        pos = size
        block = 1 << 16
        tail = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            # look for the newline before the last line (ignore a final trailing newline)
            idx = tail.rfind(b"\n", 0, len(tail) - 1)
            if idx != -1:
                line_start = pos + idx + 1
                break
        else:
            line_start = 0
        f.seek(line_start)
        last = f.read()
        keep = size
        if not last.endswith(b"\n"):
            keep = line_start
        else:
            try:
                json.loads(last)
            except ValueError:
                keep = line_start
        if keep != size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


def truncate_file(path: str | Path, size: int) -> None:
    """Truncate a file to `size` bytes, durably."""
    with open(path, "rb+") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


class JsonlWriter:
    """Append JSON objects to a file, one per line, flushed after each write.

    Args:
        path: the JSONL file.
        resume: keep existing lines (after cutting a partial last line); otherwise truncate.

    Call `sync()` at commit points (e.g. after each document) to fsync.
    """

    def __init__(self, path: str | Path, *, resume: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            repair_jsonl_tail(self.path)
            self._f = open(self.path, "ab")
        else:
            self._f = open(self.path, "wb")
        self.count = 0

    def write(self, obj: Any) -> None:
        line = json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
        self._f.write(line)
        self._f.flush()
        self.count += 1

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, object) for each non-empty line.

    Raises:
        InputError: on a line that is not a JSON object, naming file and line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InputError(
                    f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})",
                    hint="each line of a JSONL file must be one JSON object",
                ) from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict]:
    """All objects of a JSONL file (see `iter_jsonl`)."""
    return [obj for _, obj in iter_jsonl(path)]


def write_folder(final: Path, fill: Callable[[Path], Any]) -> Path:
    """Build a folder with `fill(tmp)` beside `final`, then rename it into place (replacing it).

    Returns:
        `final`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{secrets.token_hex(4)}"
    try:
        fill(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def copy_folder(src: Path, final: Path) -> Path:
    """Copy `src` to `final` atomically (see `write_folder`)."""
    return write_folder(final, lambda tmp: shutil.copytree(src, tmp))
