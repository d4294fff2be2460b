"""The workspace folder: artifacts (one folder per task execution), manifests, caches, the lock.

```
.mason/
  mason.db                    run tracker (SQLite)
  lock                        held by the `mason run` that is working here
  artifacts/<task>/<key>/     manifest.json + the task's files
  cache/                      shared by executions (parsed documents, teacher requests)
```
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mason.core.errors import LockError
from mason.core.io import atomic_write_json

MANIFEST = "manifest.json"


class Workspace:
    """Paths and durable state of one pipeline's workspace folder.

    Creating a `Workspace` touches nothing on disk; `ensure()` creates the folders.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def db_path(self) -> Path:
        return self.root / "mason.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> None:
        """Create the workspace folders if needed."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def artifact_dir(self, task: str, key: str) -> Path:
        return self.artifacts_dir / task / key

    def read_manifest(self, task: str, key: str) -> dict[str, Any] | None:
        """The manifest of an execution, or None when there is none (or it is unreadable)."""
        path = self.artifact_dir(task, key) / MANIFEST
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def is_complete(self, task: str, key: str) -> bool:
        manifest = self.read_manifest(task, key)
        return bool(manifest) and manifest.get("status") == "complete"

    def write_manifest(self, task: str, key: str, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.artifact_dir(task, key) / MANIFEST, manifest)

    def reset_artifact(self, task: str, key: str) -> None:
        """Remove an execution's folder (for `--force`)."""
        shutil.rmtree(self.artifact_dir(task, key), ignore_errors=True)

    @contextmanager
    def lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the workspace lock for the duration of a run.

        Args:
            wait: seconds to wait for another run to finish before giving up.

        Raises:
            LockError: another process holds the lock (names its pid).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(wait, 0.0)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = _read_pid(path)
                        raise LockError(
                            f"another `mason run` (pid {holder or 'unknown'}) is using the workspace {self.root}",
                            hint="wait for it to finish, or pass `--wait SECONDS` to queue behind it",
                        ) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            os.fsync(fd)
            yield
        finally:
            # closing the descriptor releases the flock, also when the process is killed
            os.close(fd)


def _read_pid(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
