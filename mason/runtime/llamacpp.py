"""The llama.cpp runtime (GGUF files) through llama-cpp-python, and llama.cpp helpers.

`LlamaCppRuntime` answers chat messages with the chat template embedded in the GGUF.
`run_isolated` runs a llama.cpp job in a child Python process: llama.cpp builds with AMX kernels
segfault at the first evaluation on some machines (see MACHINE_NOTES), and a crash there must
become a clear error, not the end of the caller.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.runtime.base import GenerationParams, Runtime

#: how to get a working llama-cpp-python (AMX kernels off: they crash on these CPUs)
INSTALL_HINT = (
    'pip install "mason[llama]"; on CPUs with AMX build it without the AMX kernels: '
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF '
    '-DGGML_AVX512=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" pip install llama-cpp-python '
    "(run `pip cache remove llama_cpp_python` first if a default build is cached)"
)


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed (without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def require_llama_cpp(purpose: str = "the llama.cpp runtime", alternative: str = "") -> None:
    """Raise unless llama-cpp-python is installed.

    Raises:
        MasonError: naming `purpose`, with the install command (and `alternative`) as hint.
    """
    if not llama_cpp_available():
        hint = INSTALL_HINT + (f"; {alternative}" if alternative else "")
        raise MasonError(f"{purpose} needs llama-cpp-python, which is not installed", hint=hint)


def run_isolated(target: str, payload: dict[str, Any], *, what: str, timeout: float = 1800) -> Any:
    """Call `target` ("module:function", taking and returning picklable data) in a child process.

    Raises:
        MasonError: the child crashed (a signal: likely a llama.cpp build with AMX kernels),
            raised, or ran past `timeout` seconds; the message carries its stderr's tail.
    """
    with tempfile.TemporaryDirectory(prefix="mason-llamacpp-") as tmp:
        src, dst = Path(tmp) / "in.pkl", Path(tmp) / "out.pkl"
        src.write_bytes(pickle.dumps((target, payload)))
        code = "from mason.runtime.llamacpp import _isolated_main; _isolated_main()"
        try:
            proc = subprocess.run([sys.executable, "-c", code, str(src), str(dst)], capture_output=True, check=False,
                                  text=True, timeout=timeout, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        except subprocess.TimeoutExpired as e:
            raise MasonError(f"{what} did not finish in {timeout:.0f}s") from e
        tail = "\n".join(((proc.stderr or "") + (proc.stdout or "")).strip().splitlines()[-15:])
        if proc.returncode < 0:
            raise MasonError(
                f"{what} crashed (signal {-proc.returncode}) inside llama.cpp:\n{tail}",
                hint="llama.cpp builds with AMX kernels segfault on some CPUs; reinstall without them: " + INSTALL_HINT,
            )
        if proc.returncode != 0 or not dst.is_file():
            raise MasonError(f"{what} failed (exit code {proc.returncode}):\n{tail}")
        return pickle.loads(dst.read_bytes())


def _isolated_main() -> None:
    # child side of run_isolated: argv = [in.pkl, out.pkl]
    src, dst = sys.argv[-2], sys.argv[-1]
    with open(src, "rb") as f:
        target, payload = pickle.load(f)
    module, func = target.split(":")
    result = getattr(importlib.import_module(module), func)(payload)
    with open(dst, "wb") as f:
        pickle.dump(result, f)


class LlamaCppRuntime(Runtime):
    """A GGUF model in llama.cpp, answering with the chat template stored in the file.

    Options: `n_ctx` (default 2048), `n_threads` (default: all cores), `chat_format` (a
    llama-cpp-python chat format name instead of the embedded template), `verbose`.
    """

    format = "gguf"
    backend = "llama.cpp"

    def __init__(self, path: Path, *, format: str = "gguf", base_model: str | None = None,
                 n_ctx: int = 2048, n_threads: int | None = None, chat_format: str | None = None,
                 verbose: bool = False, **options: Any) -> None:
        """Load `path` (a .gguf file).

        Raises:
            InputError: the file does not exist; MasonError: llama-cpp-python is missing or
                cannot load the file.
        """
        super().__init__()
        require_llama_cpp()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such GGUF file", hint="pass the path of a .gguf file")
        from llama_cpp import Llama

        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads or os.cpu_count() or 1)
        try:
            self.llm = Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                             chat_format=chat_format, verbose=verbose, **options)
        except (ValueError, RuntimeError) as e:
            raise MasonError(f"llama.cpp could not load {self.path.name}: {e}",
                             hint="check that the file is a complete GGUF of an architecture llama.cpp supports") from e

    def _prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        # the prompt as the embedded template renders it (what create_chat_completion feeds)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            text = "\n".join(str(m.get("content") or "") for m in messages)
        else:
            formatter = Jinja2ChatFormatter(template=template, bos_token=self._token_text(self.llm.token_bos()),
                                            eos_token=self._token_text(self.llm.token_eos()))
            text = formatter(messages=messages).prompt
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def stream(self, messages: list[dict[str, Any]],
               params: GenerationParams = GenerationParams()) -> Iterator[str]:  # noqa: B008 (frozen, as in Runtime)
        """Yield the answer in pieces as llama.cpp decodes it; sets `last_usage` at the end."""
        chunks = self.llm.create_chat_completion(
            messages=messages, stream=True, max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, repeat_penalty=params.repetition_penalty, seed=params.seed,
        )
        pieces: list[str] = []
        for chunk in chunks:
            piece = chunk["choices"][0].get("delta", {}).get("content")
            if piece:
                pieces.append(piece)
                yield piece
        text = "".join(pieces)
        out = len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0
        self.last_usage = (self._prompt_tokens(messages), out)

    def describe(self) -> dict[str, Any]:
        """Format, backend, file and context settings."""
        return {"format": self.format, "backend": self.backend, "path": str(self.path), "n_ctx": self.n_ctx,
                "n_threads": self.n_threads, "chat_format": self.llm.chat_format}

    def close(self) -> None:
        """Free the model."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
