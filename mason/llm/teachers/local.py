"""In-process teachers: a GGUF model through llama.cpp, or a Hugging Face model through transformers.

Neither a `llama_cpp.Llama` nor a transformers model may run two generations at once, so each
teacher answers one request at a time (a lock), in a worker thread (the event loop stays free
for the rest of the pipeline), and says so with `max_concurrency = 1` (which `open_client`
uses, so the per-request timeout measures generation rather than queueing). A request whose
caller gave up (timeout, cancellation) stops generating at the next token instead of holding
the lock until `max_tokens`.

    LlamaCppTeacher(Path("model.gguf"))                  # pip install "mason[llama]"
    TransformersTeacher("/path/to/hf-folder")            # pip install "mason[models]"
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError
from mason.llm.teachers.base import ChatRequest, Completion, TeacherError
from mason.runtime.llamacpp import INSTALL_HINT, llama_cpp_available, probe_llama_cpp


def _require_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise MasonError(f"running a GGUF model in-process needs llama-cpp-python ({e})",
                         hint=INSTALL_HINT) from None
    return llama_cpp


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _LockedWorker:
    """Runs one generation at a time in a worker thread; cancellation reaches the generation."""

    max_concurrency = 1
    model_id: str

    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def complete(self, request: ChatRequest) -> Completion:
        """Generate an answer in a worker thread.

        Returns:
            The `Completion` (token counts from the backend).

        Raises:
            TeacherError: the model failed on this request (not retryable: it would fail again).
            MasonError: the backend is not installed or the model cannot be loaded.
        """
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._locked, request, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the thread cannot be killed: make its generation stop at the next token
            raise

    def _locked(self, request: ChatRequest, cancel: threading.Event) -> Completion:
        with self._lock:
            if cancel.is_set():
                raise TeacherError("request cancelled before it started")
            return self._generate(request, cancel)

    def _generate(self, request: ChatRequest, cancel: threading.Event) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Drop the model (its memory is freed once no generation uses it)."""
        await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        raise NotImplementedError


class LlamaCppTeacher(_LockedWorker):
    """A GGUF model run in-process by llama.cpp (`llama_cpp.Llama.create_chat_completion`).

    Args:
        model_path: the .gguf file.
        n_ctx: context window in tokens (prompt + answer); 4096 covers a chunk, the prompt
            and a long answer while keeping the KV cache small.
        n_threads: CPU threads (default: the cores this process may use).
        probe: check in a subprocess first that this llama.cpp build does not crash.
        label: what `model_id` shows instead of the file path (e.g. a built-in's name).
    """

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 probe: bool = True, label: str | None = None):
        super().__init__()
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.probe = probe
        self.model_id = f"llama.cpp:{label or self.model_path}"
        self._llm: Any = None

    def __repr__(self) -> str:
        return f"LlamaCppTeacher({str(self.model_path)!r})"

    def _model(self) -> Any:
        if self._llm is None:
            llama_cpp = _require_llama_cpp()
            if not self.model_path.is_file():
                raise MasonError(f"GGUF file {self.model_path} does not exist")
            if self.probe:
                probe_llama_cpp(str(self.model_path))
            self._llm = llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                        n_threads=self.n_threads, verbose=False)
        return self._llm

    def _generate(self, request: ChatRequest, cancel: threading.Event) -> Completion:
        llm = self._model()
        eos = llm.token_eos()

        def stop_when_cancelled(input_ids: Any, scores: Any) -> Any:
            # create_chat_completion takes no stopping criteria: forcing EOS ends generation
            if cancel.is_set():
                scores[:] = -float("inf")
                scores[eos] = 0.0
            return scores

        params: dict[str, Any] = {**request.sampling_params(), "max_tokens": request.max_tokens,
                                  "logits_processor": [stop_when_cancelled]}
        if request.json_schema is not None:
            # the schema becomes a grammar: the answer has the right shape by construction
            params["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_mode:
            params["response_format"] = {"type": "json_object"}  # grammar-constrained JSON
        try:
            out = llm.create_chat_completion(**params)
        except ValueError as e:  # llama.cpp reports a prompt longer than n_ctx this way
            raise TeacherError(f"{self.model_id}: {e}",
                               hint="shorten the chunks (ingest `chunk_size`) or lower `max_tokens`") from None
        choice = out["choices"][0]
        message = choice.get("message") or {}
        usage = out.get("usage") or {}
        return Completion(
            text=message.get("content") or "",
            model=self.model_id,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
            tool_calls=list(message.get("tool_calls") or []),
        )

    def _unload(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None and hasattr(llm, "close"):
            llm.close()


class TransformersTeacher(_LockedWorker):
    """A Hugging Face causal LM run in-process: chat template, `generate`, decode.

    JSON mode is not enforced here (transformers has no grammar sampling): callers parse and
    validate the JSON they asked for, as they must with any backend.

    Args:
        model: what `from_pretrained` accepts (a folder from `mason.models.materialize`).
        label: what `model_id` shows instead of `model`.
        device: torch device (default: cuda when available, else cpu).
    """

    def __init__(self, model: str | Path, *, label: str | None = None, device: str | None = None):
        super().__init__()
        self.model = str(model)
        self.device = device
        self.model_id = f"transformers:{label or self.model}"
        self._loaded: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"TransformersTeacher({self.model!r})"

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as e:
                raise MasonError(f"running {self.model} in-process needs torch and transformers ({e})",
                                 hint="pip install 'mason[models]'") from None
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForCausalLM.from_pretrained(self.model, dtype="auto").to(device).eval()
            self.device = device
            self._loaded = (tokenizer, model)
        return self._loaded

    def _generate(self, request: ChatRequest, cancel: threading.Event) -> Completion:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokenizer, model = self._load()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        if not getattr(tokenizer, "chat_template", None):
            raise MasonError(f"{self.model} has no chat template: it cannot be used as a chat teacher",
                             hint="use an instruct/chat model as teacher")
        inputs = tokenizer.apply_chat_template(
            list(request.messages), tools=list(request.tools) if request.tools else None,
            add_generation_prompt=True, return_tensors="pt", return_dict=True,
        ).to(model.device)
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens, "do_sample": sample,
                                  "stopping_criteria": StoppingCriteriaList([_Cancelled()])}
        if sample:
            kwargs["temperature"] = request.temperature
            if request.top_p is not None:
                kwargs["top_p"] = request.top_p
        else:  # greedy: unset the model's own sampling defaults so generate() doesn't warn
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=tokenizer)
        if request.seed is not None:
            torch.manual_seed(request.seed)
        if tokenizer.pad_token_id is None:
            kwargs["pad_token_id"] = tokenizer.eos_token_id
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        prompt_len = int(inputs["input_ids"].shape[1])
        new = output[0, prompt_len:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        for stop in request.stop or ():
            text = text.split(stop, 1)[0]  # OpenAI semantics: the stop string is not returned
        finish = "length" if len(new) >= request.max_tokens else "stop"
        return Completion(text=text.strip(), model=self.model_id, prompt_tokens=prompt_len,
                          completion_tokens=len(new), finish_reason=finish)

    def _unload(self) -> None:
        with self._lock:
            self._loaded = None
