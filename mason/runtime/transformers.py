"""The transformers runtime: merged model folders and PEFT adapters, in PyTorch.

`merged` is any Hugging Face causal-LM folder; `adapter` is a PEFT adapter folder put on its base
model (the base named in `adapter_config.json`, or `base_model=`), resolved through
`mason.models` so built-in names and offline hub ids fail with the resolver's clear messages.
torch, transformers and peft are imported inside the methods: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mason.core.console import warn
from mason.core.errors import InputError, MasonError, ModelNotFoundError
from mason.data.chat import ensure_chat_template
from mason.runtime.base import GenerationParams, GenerationResult, Runtime, require

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
DEFAULT_PARAMS = GenerationParams()


def pick_device(device: str | None = None) -> str:
    """`device` when given, else "cuda" when available, else "mps", else "cpu"."""
    from mason.models.device import device_kind

    return device_kind(device)


def _pick_dtype(dtype: Any, device: str) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        # bf16 halves memory and is what GPUs are fast at; fp32 elsewhere (CPU bf16 is slow)
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise InputError(f"unknown dtype {dtype!r}", hint=f"dtypes: {', '.join(_DTYPES)}")
        return getattr(torch, dtype)
    return dtype


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    # transformers draws a "Loading weights" bar and peft raises library-internal FutureWarnings
    # on stderr: noise in `mason chat`'s terminal that the user can do nothing about
    import warnings

    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class _StopFlag:
    """A stopping criterion that ends generation once `event` is set (the reader went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class TransformersRuntime(Runtime):
    """A merged model folder or a PEFT adapter, run with transformers (CUDA, else MPS, else CPU).

    Args:
        path: the model folder (merged) or adapter folder (adapter).
        format: "merged" or "adapter".
        base_model: adapters only: the base to load instead of `adapter_config.json`'s
            `base_model_name_or_path` (a folder, .gguf file, built-in name or hub id).
        device: "cuda", "mps", "cpu"... (default: the best available).
        dtype: "auto" (bf16 on CUDA, fp32 elsewhere), "float32", "bfloat16", "float16".
        batch_size: rows per forward batch in `generate_batch` (default 8).
        trust_remote_code: passed to `from_pretrained`.
    Raises:
        InputError: bad format, dtype or adapter folder.
        ModelNotFoundError: the adapter's base resolves to nothing usable here.
        MasonError: torch/transformers/peft missing; the weights cannot be loaded.
        InputError: no chat template and no eos token to build MASON's default one from.
    """

    backend = "transformers"

    def __init__(self, path: str | Path, *, format: str = "merged", base_model: str | None = None,
                 device: str | None = None, dtype: Any = None, batch_size: int = 8,
                 trust_remote_code: bool = False, **options: Any):
        super().__init__()
        if format not in ("merged", "adapter"):
            raise InputError(f"the transformers runtime loads merged or adapter folders, not {format!r}")
        if options:
            warn(f"transformers runtime: ignoring options {', '.join(sorted(options))}")
        require("torch", "models")
        transformers = require("transformers", "models")
        self.format, self.path = format, Path(path).expanduser()
        if self.path.is_dir():
            from mason.models.lfs import check_model_folder

            check_model_folder(self.path)  # a clone without Git LFS: say `git lfs pull`, not "header too large"
        self.device = pick_device(device)
        self.dtype = _pick_dtype(dtype, self.device)
        self.batch_size = max(1, int(batch_size))
        self.base_model: str | None = None
        kw = {"dtype": self.dtype, "trust_remote_code": trust_remote_code}
        source = str(self.path)
        if format == "adapter":
            source = self.base_model = self._base_source(base_model)
        # the tokenizer first: one that cannot chat fails before the weights load
        has_tok = any((self.path / f).is_file() for f in _TOKENIZER_FILES)
        tok_source = str(self.path) if format == "merged" or has_tok else source
        tok = self._load(lambda: transformers.AutoTokenizer.from_pretrained(
            tok_source, trust_remote_code=trust_remote_code), tok_source)
        # no chat template (a base model): MASON's default, the one its training saves with the model
        ensure_chat_template(tok)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"  # decoder-only batches: prompts end where generation starts
        with _quiet_loading():
            model = self._load(lambda: transformers.AutoModelForCausalLM.from_pretrained(source, **kw), source)
            if format == "adapter":
                peft = require("peft", "train")
                model = self._load(lambda: peft.PeftModel.from_pretrained(model, str(self.path)), str(self.path))
        self.model = model.to(self.device).eval()
        self.tokenizer = tok
        self.stop_ids = self._stop_ids()

    def _base_source(self, base_model: str | None) -> str:
        from mason.models import materialize, resolve_model

        config_file = self.path / "adapter_config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{config_file}: cannot read the adapter config ({e})") from None
        name = base_model or config.get("base_model_name_or_path")
        if not name:
            raise InputError(f"{config_file} names no base model (base_model_name_or_path)",
                             hint="pass the base model: --base NAME (folder, .gguf, built-in name or hub id)")
        # materialize runs check_available first: built-ins and offline hub ids fail clearly here
        try:
            return materialize(resolve_model(str(name)))
        except ModelNotFoundError as e:
            if base_model:
                raise
            raise ModelNotFoundError(f"the adapter's base model (from {config_file.name}): {e.message}",
                                     hint="pass the base model: --base NAME (a folder, .gguf file, built-in "
                                          "name or hub id)") from None

    @staticmethod
    def _load(fn: Any, source: str) -> Any:
        try:
            return fn()
        except (OSError, ValueError, KeyError) as e:
            raise MasonError(f"cannot load {source}: {e}",
                             hint="check the folder is complete (config, weights, tokenizer)") from None

    def _stop_ids(self) -> list[int]:
        """Token ids that end an answer: the tokenizer's eos, the generation config's eos ids, and
        the end-of-turn markers the chat template uses (e.g. `<|im_end|>`)."""
        from mason.models.resolver import _END_OF_TURN

        tok = self.tokenizer
        ids = [tok.eos_token_id]
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids += gen_eos if isinstance(gen_eos, list) else [gen_eos]
        template = tok.chat_template if isinstance(tok.chat_template, str) else json.dumps(tok.chat_template)
        for marker in _END_OF_TURN:
            if marker in template:
                tid = tok.convert_tokens_to_ids(marker)
                if isinstance(tid, int) and tid != tok.unk_token_id:
                    ids.append(tid)
        return list(dict.fromkeys(i for i in ids if isinstance(i, int)))

    def describe(self) -> dict[str, Any]:
        """Format, backend, path, base model (adapters), device and dtype."""
        out = {**super().describe(), "path": str(self.path), "device": self.device,
               "dtype": str(self.dtype).removeprefix("torch.")}
        if self.base_model:
            out["base_model"] = self.base_model
        return out

    def prompt_text(self, messages: list[dict[str, Any]]) -> str:
        """The conversation rendered with the chat template, ending with the assistant's turn opener."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _gen_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_new_tokens": params.max_tokens, "eos_token_id": self.stop_ids,
                              "pad_token_id": self.tokenizer.pad_token_id,
                              "repetition_penalty": params.repetition_penalty}
        if params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:  # greedy: clear sampling settings a model's generation_config may carry
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def _answer_len(self, ids: list[int]) -> int:
        """Tokens of an answer: generated tokens before the first stop token (padding excluded)."""
        stops = set(self.stop_ids)
        return next((i for i, t in enumerate(ids) if t in stops), len(ids))

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams = DEFAULT_PARAMS) -> Iterator[str]:
        """Yield the answer as it is decoded (generation runs in a thread); sets `last_usage` to
        `(prompt_tokens, output_tokens)`, the stop token not counted. Closing the iterator early
        stops the generation.

        Raises:
            MasonError: generation failed (the library's message).
        """
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        enc = self.tokenizer(self.prompt_text(messages), return_tensors="pt", add_special_tokens=False).to(self.device)
        n_prompt = int(enc["input_ids"].shape[1])
        self.last_usage = (n_prompt, 0)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                with torch.inference_mode():
                    box["out"] = self.model.generate(**enc, **self._gen_kwargs(params), streamer=streamer,
                                                     stopping_criteria=StoppingCriteriaList([_StopFlag(stop)]))
            except BaseException as e:  # noqa: BLE001 (re-raised in the reading thread)
                box["error"] = e
                streamer.end()  # unblock the reader

        if params.temperature > 0:
            torch.manual_seed(params.seed)
        thread = threading.Thread(target=work, name="mason-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            thread.join()
        if "error" in box:
            raise MasonError(f"generation failed: {box['error']}") from box["error"]
        self.last_usage = (n_prompt, self._answer_len(box["out"][0, n_prompt:].tolist()))

    def generate_batch(self, conversations: list[list[dict[str, Any]]],
                       params: GenerationParams = DEFAULT_PARAMS) -> list[GenerationResult]:
        """Answers to several conversations, generated `batch_size` at a time with left padding.

        Prompts are grouped by length (less padding) and results come back in input order.
        `seconds` of a row is its batch's time split evenly between the batch's rows, and
        `first_token_seconds` is None (a batch has no per-row first token).
        """
        import torch

        texts = [self.prompt_text(m) for m in conversations]
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        results: list[GenerationResult | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            width = int(enc["input_ids"].shape[1])
            if params.temperature > 0:
                torch.manual_seed(params.seed)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.model.generate(**enc, **self._gen_kwargs(params))
            seconds = (time.perf_counter() - t0) / len(rows)
            for j, i in enumerate(rows):
                new = out[j, width:].tolist()
                n = self._answer_len(new)
                text = self.tokenizer.decode(new[:n], skip_special_tokens=True).strip()
                results[i] = GenerationResult(text, lengths[i], n, seconds, None, {"batch_size": len(rows)})
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Drop the model (and free GPU memory)."""
        import torch

        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
