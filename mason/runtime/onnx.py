"""The ONNX runtime: a folder written by MASON's ONNX export, decoded with onnxruntime-genai.

The prompt is rendered with the chat template of the tokenizer files saved in the folder (the
same transformers code the PyTorch model was verified with), so the ONNX model sees the ids
the reference saw; onnxruntime-genai's tokenizer stream turns generated ids back into text
(export verification checks the two tokenizers agree). Decoding uses the graph's KV cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.runtime.base import GenerationParams, Runtime, require

#: end-of-turn markers that stop an answer when the chat template uses them
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>")


def stop_ids(tokenizer: Any, extra: list[int] | tuple[int, ...] = ()) -> set[int]:
    """Ids that end an answer: `extra` (the export's eos ids), the tokenizer's eos, and the
    end-of-turn markers its chat template writes (e.g. `<|im_end|>`)."""
    ids = {int(i) for i in extra if i is not None}
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else json.dumps(
        tokenizer.chat_template)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[m] for m in END_OF_TURN if m in template and m in vocab)
    return ids


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """Token ids of the conversation with the assistant's turn opened (no implicit special tokens:
    the template writes them). A tokenizer without a chat template gets MASON's default."""
    from mason.data.chat import ensure_chat_template

    ensure_chat_template(tokenizer)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class OnnxRuntime(Runtime):
    """An onnxruntime-genai folder (genai_config.json + model.onnx + tokenizer files) on CPU.

    Args:
        path: the ONNX folder (or its model.onnx file).
        format: "onnx".
        base_model: unused (an ONNX folder is complete).
        n_threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    Raises:
        InputError: not an onnxruntime-genai folder.
        MasonError: onnxruntime-genai or transformers is missing; the model cannot be loaded.
    """

    format = "onnx"
    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, format: str = "onnx", base_model: str | None = None,
                 n_threads: int | None = None, **options: Any):
        super().__init__()
        og = require("onnxruntime_genai", "onnx")
        transformers = require("transformers", "onnx")
        folder = Path(path).expanduser()
        folder = folder.parent if folder.is_file() else folder
        if not (folder / "genai_config.json").is_file():
            raise InputError(f"{folder}: no genai_config.json, so not an onnxruntime-genai model folder",
                             hint="export the model with MASON's onnx export (export.format: onnx)")
        from mason.models.lfs import check_model_folder

        check_model_folder(folder)
        self.path, self.options, self.og = folder, dict(options), og
        self.genai_config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
        try:
            config = og.Config(str(folder))
            if n_threads:
                config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                    "intra_op_num_threads": int(n_threads)}}}}))
            self.model = og.Model(config)
            self.og_tokenizer = og.Tokenizer(self.model)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        except (RuntimeError, OSError, ValueError) as e:
            raise MasonError(f"cannot load the ONNX model in {folder}: {e}",
                             hint="re-export it; the folder needs genai_config.json, the .onnx files and "
                                  "the tokenizer files") from None
        model_cfg = self.genai_config["model"]
        eos = model_cfg.get("eos_token_id")
        self.stop_ids = stop_ids(self.tokenizer, eos if isinstance(eos, list) else [eos])
        self.skip_ids = set(getattr(self.tokenizer, "all_special_ids", []))
        self.context_length = int(model_cfg.get("context_length") or 2048)
        self.n_threads = n_threads

    def describe(self) -> dict[str, Any]:
        """Format, backend, folder, model type and context length."""
        return {**super().describe(), "path": str(self.path), "model_type": self.genai_config["model"].get("type"),
                "context_length": self.context_length, "onnxruntime_genai": getattr(self.og, "__version__", None)}

    def _search_options(self, params: GenerationParams, n_prompt: int) -> dict[str, Any]:
        """onnxruntime-genai search options for `params` (greedy when temperature is 0)."""
        opts: dict[str, Any] = {"max_length": min(self.context_length, n_prompt + params.max_tokens),
                                "repetition_penalty": float(params.repetition_penalty)}
        if params.temperature > 0:
            opts.update(do_sample=True, temperature=float(params.temperature), top_p=float(params.top_p),
                        random_seed=int(params.seed))
        else:
            opts.update(do_sample=False)
        return opts

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams = GenerationParams()) -> Iterator[str]:
        """Yield the answer's text as it is decoded; sets `last_usage` to (prompt tokens, answer
        tokens), the stop token not counted. Closing the iterator early stops decoding.

        Raises:
            InputError: the prompt does not fit the model's context.
            MasonError: onnxruntime-genai failed while decoding.
        """
        import numpy as np

        ids = render_prompt(self.tokenizer, messages)
        n_prompt = len(ids)
        self.last_usage = (n_prompt, 0)
        if n_prompt >= self.context_length:
            raise InputError(f"the prompt has {n_prompt} tokens; the model's context is {self.context_length}",
                             hint="shorten the conversation")
        if params.max_tokens <= 0:
            return
        og = self.og
        search = og.GeneratorParams(self.model)
        search.set_search_options(**self._search_options(params, n_prompt))
        try:
            generator = og.Generator(self.model, search)
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
        except RuntimeError as e:
            raise MasonError(f"onnxruntime-genai failed on the prompt: {e}") from None
        decoder = self.og_tokenizer.create_stream()
        produced = 0
        try:
            while not generator.is_done() and produced < params.max_tokens:
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                if token in self.stop_ids:
                    break
                produced += 1
                self.last_usage = (n_prompt, produced)
                if token in self.skip_ids:
                    continue
                piece = decoder.decode(token)
                if piece:
                    yield piece
        except RuntimeError as e:
            raise MasonError(f"onnxruntime-genai failed while decoding: {e}") from None
        finally:
            del generator  # frees its KV cache now, also when the reader stops early

    def close(self) -> None:
        """Drop the model."""
        self.model = None
