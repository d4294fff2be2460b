"""The llama.cpp runtime (GGUF files) through llama-cpp-python, and llama.cpp helpers.

`LlamaCppRuntime` answers chat messages with the chat template embedded in the GGUF.
`run_isolated` runs a llama.cpp job in a child Python process and `probe_llama_cpp` checks a
file once before loading it in-process: a llama.cpp built for other CPUs (AVX-512 on an
AVX2-only machine: SIGILL; AMX kernels on some Xeons: SIGSEGV, see MACHINE_NOTES) dies at the
first evaluation, and that must become a clear error naming the cause, not the end of the caller.
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
from functools import lru_cache
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.runtime.base import GenerationParams, Runtime

#: llama.cpp build flags that run on any x86-64 CPU with AVX2 (see MACHINE_NOTES.md): nothing
#: beyond AVX2 (an AVX-512 build dies with SIGILL on CPUs without it, most AMD servers and laptops),
#: and no AMX kernels (they segfault at the first evaluation on some Xeons, a known llama.cpp bug).
LLAMA_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF "
    "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
#: how to get a working llama-cpp-python (compiles llama.cpp, ~10 minutes once; pip caches the wheel)
INSTALL_HINT = f'CMAKE_ARGS="{LLAMA_CMAKE_ARGS}" pip install "mason[llama]"'
#: how to replace a llama-cpp-python built with other flags (pip's wheel cache ignores CMAKE_ARGS)
REBUILD_HINT = (
    "pip cache remove llama_cpp_python && pip uninstall -y llama-cpp-python && "
    f'CMAKE_ARGS="{LLAMA_CMAKE_ARGS}" pip install --no-binary llama-cpp-python "mason[llama]"'
)


def cpu_features() -> set[str]:
    """The x86 vector extensions llama.cpp cares about that this CPU has (from /proc/cpuinfo):
    a subset of {"avx2", "avx512f", "amx_tile"}; empty where /proc/cpuinfo is missing."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return set()
    return {"avx2", "avx512f", "amx_tile"} & set(flags)


def crash_cause(signal_number: int) -> str:
    """What a llama.cpp process killed by `signal_number` most likely hit, in one sentence."""
    features = cpu_features()
    if signal_number == 4:  # SIGILL
        missing = "AVX-512" if "avx512f" not in features else "an instruction set it lacks"
        return (f"illegal instruction: this llama.cpp was compiled for CPU instructions this machine does not "
                f"have (likely {missing}; it has {', '.join(sorted(features)) or 'no AVX2'})")
    if signal_number == 11 and "amx_tile" in features:  # SIGSEGV
        return "segmentation fault: llama.cpp's AMX kernels crash on this CPU (it has AMX) at the first evaluation"
    if signal_number == 11:
        return "segmentation fault inside llama.cpp (llama.cpp built for another machine, or a damaged GGUF)"
    return f"killed by signal {signal_number} inside llama.cpp"


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


# Probe run in a child process: load the GGUF and evaluate a few tokens. A llama.cpp built for
# other CPUs crashes right there, which would otherwise kill the caller with no message.
_PROBE = (
    "import sys\nfrom llama_cpp import Llama\n"
    "m = Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)\n"
    "m.eval(m.tokenize(b'Hello'))\nprint('ok')\n"
)


@lru_cache(maxsize=8)
def probe_llama_cpp(model_path: str) -> None:
    """Check, once per process and file, that llama.cpp evaluates `model_path` without crashing.

    Raises:
        MasonError: the probe crashed (the message names the cause: illegal instruction or the
            AMX segfault, and the hint how to rebuild), failed to load the file, or hung.
    """
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, model_path], capture_output=True,
                              text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise MasonError(f"llama.cpp took over 5 minutes to load {model_path}") from None
    if proc.returncode == 0:
        return
    if proc.returncode < 0:
        raise MasonError(f"llama.cpp crashed evaluating {Path(model_path).name}: {crash_cause(-proc.returncode)}",
                         hint=REBUILD_HINT)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise MasonError(f"llama.cpp could not load {model_path}: {' | '.join(tail) or 'no message'}")


def run_isolated(target: str, payload: dict[str, Any], *, what: str, timeout: float = 1800) -> Any:
    """Call `target` ("module:function", taking and returning picklable data) in a child process.

    Raises:
        MasonError: the child crashed (a signal: a llama.cpp build made for other CPUs),
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
            raise MasonError(f"{what} crashed (signal {-proc.returncode}): {crash_cause(-proc.returncode)}\n{tail}",
                             hint=REBUILD_HINT)
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
        from mason.models.lfs import check_not_lfs_pointer

        check_not_lfs_pointer(self.path)
        probe_llama_cpp(str(self.path.resolve()))
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
