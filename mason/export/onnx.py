"""ONNX export through onnxruntime-genai's model builder, verified with onnxruntime.

The builder (`python -m onnxruntime_genai.models.builder`) turns a Hugging Face folder into an
ONNX decoder with a KV cache (GroupQueryAttention on CPU), a `genai_config.json` and the
tokenizer files, in fp32, int8 or int4 (MatMulNBits weight-only quantization). It runs in a
subprocess so its prints, its torch import and any crash stay out of the caller. Architectures the
builder does not cover (GPT-2, DistilGPT2) are traced with torch.onnx into the same layout
(`mason.export.onnx_torch`).

`verify` checks three things against the PyTorch model, on the same prompt token ids:
next-token logits from a plain `onnxruntime.InferenceSession` (the graph itself), greedy
continuations from onnxruntime-genai's `Generator` (what `OnnxRuntime` decodes with), and
tokenizer parity (onnxruntime-genai's tokenizer and the exported folder's chat template give
the ids the reference used).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mason.core.errors import MasonError
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError
from mason.export.verify import (
    TOLERANCES,
    Reference,
    compare,
    reference_outputs,
    render_ids,
    summarize,
)

#: precisions the builder can target on the CPU execution provider; fp16/bf16 graphs are built
#: but onnxruntime's CPU kernels fail on them (measured: buffer shape mismatch in a Cast node)
PRECISIONS = ("fp32", "int8", "int4")
#: modules the export needs (the builder imports onnx_ir, onnx, torch and transformers)
EXPORT_MODULES = ("onnxruntime", "onnxruntime_genai", "onnx", "onnx_ir")
INSTALL_HINT = 'pip install "mason[onnx]"'
#: greedy tokens compared per prompt
GREEDY_TOKENS = 16
#: used when the job has no verify prompts
DEFAULT_PROMPTS = [[{"role": "user", "content": "What is a keystone?"}]]

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b.*:")
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def require(modules: tuple[str, ...] = EXPORT_MODULES) -> dict[str, Any]:
    """Import `modules` and return them by name.

    Raises:
        MasonError: one or more are not installed (the hint says how to install them).
    """
    found, missing = {}, []
    for name in modules:
        try:
            found[name] = importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MasonError(f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                         "not installed", hint=INSTALL_HINT)
    return found


def precision_of(options: dict[str, Any]) -> str:
    """The `onnx_precision` option, checked (default fp32).

    Raises:
        MasonError: not one of PRECISIONS.
    """
    precision = str(options.get("onnx_precision") or "fp32").lower()
    if precision not in PRECISIONS:
        raise MasonError(f"onnx_precision '{precision}' is not supported for CPU ONNX export",
                         hint=f"use one of {', '.join(PRECISIONS)} (fp16/bf16 ONNX graphs do not run on "
                              "onnxruntime's CPU provider)")
    return precision


def _clear(folder: Path) -> None:
    """Remove everything inside `folder` (not the folder itself): nothing half-written stays."""
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def run_builder(model_dir: Path, out_dir: Path, precision: str, timeout: float | None = None) -> str:
    """Run the onnxruntime-genai model builder on `model_dir` into `out_dir`; returns its log.

    Raises:
        MasonError: the builder exited non-zero or wrote no genai_config.json (log tail in the message).
    """
    with tempfile.TemporaryDirectory(prefix="mason-onnx-cache-") as cache:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(model_dir),
               "-o", str(out_dir), "-p", precision, "-e", "cpu", "-c", cache]
        # offline: a local folder needs no hub, and a hub lookup would only hang without network
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=cache,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise MasonError(f"ONNX export of {model_dir} timed out after {exc.timeout:.0f}s") from exc
    log = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0 or not (out_dir / "genai_config.json").is_file():
        lines = [line for line in log.strip().splitlines() if line.strip()]
        # the exception line says what went wrong; the tail shows where
        error = next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), lines[-1] if lines else "")
        tail = "\n".join("  | " + line for line in lines[-12:])
        raise MasonError(f"ONNX export of {model_dir} failed (onnxruntime-genai model builder, exit "
                         f"{proc.returncode}): {error.strip()}\n  builder log (last lines):\n{tail}",
                         hint="the builder supports Llama, Mistral, Qwen, Phi, Gemma, Granite, SmolLM... "
                              "decoder-only models (and MASON traces GPT-2 itself); export this one as gguf or "
                              "merged instead")
    return log


class OnnxExporter:
    """ONNX (onnxruntime-genai layout: model.onnx + genai_config.json + tokenizer) with a KV cache.

    Options: `onnx_precision` (fp32 | int8 | int4, default fp32), `verify_tolerance` (overrides
    the max |logit diff| of `TOLERANCES` for the precision).
    """

    name = "onnx"

    def export(self, job: ExportJob) -> ExportOutput:
        """Build the ONNX folder in `job.out_dir`.

        Raises:
            MasonError: a package is missing, the precision is unknown, or the builder failed
                (`job.out_dir` is left empty).
        """
        from mason.export.onnx_torch import export_onnx, uses_torch_export

        modules = require()
        precision = precision_of(job.options)
        started = time.perf_counter()
        route: dict[str, Any] = {"tool": "onnxruntime-genai model builder"}
        try:
            if uses_torch_export(Path(job.model_dir)):  # GPT-2: the builder does not cover it
                route = export_onnx(Path(job.model_dir), Path(job.out_dir), precision)
            else:
                run_builder(Path(job.model_dir), Path(job.out_dir), precision)
            self._complete_tokenizer(Path(job.model_dir), Path(job.out_dir))
        except BaseException:
            _clear(Path(job.out_dir))
            raise
        seconds = time.perf_counter() - started
        out = Path(job.out_dir)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        genai = json.loads((out / "genai_config.json").read_text(encoding="utf-8"))
        details = {
            "precision": precision,
            "execution_provider": "cpu",
            "model_type": genai["model"].get("type"),
            "context_length": genai["model"].get("context_length"),
            "onnx_bytes": sum((out / f).stat().st_size for f in files if ".onnx" in f),
            "export_seconds": round(seconds, 2),
            **route,
            "versions": {name: getattr(mod, "__version__", None) for name, mod in modules.items()},
        }
        return ExportOutput(path=out, files=files, details=details)

    @staticmethod
    def _complete_tokenizer(model_dir: Path, out_dir: Path) -> None:
        """Copy tokenizer/chat-template files the builder did not write (the runtime renders the
        chat template with transformers from this folder)."""
        names = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                 "tokenizer.model", "vocab.json", "merges.txt", "generation_config.json")
        for name in names:
            if (model_dir / name).is_file() and not (out_dir / name).exists():
                shutil.copy2(model_dir / name, out_dir / name)

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        """Compare the ONNX graph and its genai runtime with PyTorch on `job.verify_prompts`.

        Returns:
            `summarize`'s verdict plus `tokenizer_match` and `greedy_runtime`.
        Raises:
            ExportVerificationError: logits beyond tolerance, a top-1 mismatch (fp32/int8), or a
                tokenizer that does not give the reference ids.
        """
        require(("onnxruntime", "onnxruntime_genai"))
        precision = precision_of(job.options)
        tolerance = float(job.options.get("verify_tolerance") or TOLERANCES[precision])
        folder = Path(output.path)
        refs = reference_outputs(Path(job.model_dir), job.verify_prompts or DEFAULT_PROMPTS, GREEDY_TOKENS)
        decoder = OrtDecoder(folder)
        generator = GenaiGreedy(folder)
        tokenizer_problems = check_tokenizers(folder, job.verify_prompts or DEFAULT_PROMPTS, refs, generator)
        rows = []
        for ref in refs:
            logits = decoder.next_logits(ref.prompt_ids)
            row = compare(ref, logits, generator.greedy(ref.prompt_ids, len(ref.greedy_ids)))
            rows.append(row)
        # int4 weights of a near-flat tiny model may swap the top token; logits still bound the error
        result = summarize(rows, tolerance, "onnxruntime", precision, require_top1=precision != "int4")
        result["greedy_runtime"] = "onnxruntime-genai"
        result["tokenizer_match"] = not tokenizer_problems
        if tokenizer_problems or not result["passed"]:
            result["passed"] = False
            raise ExportVerificationError(failure_message(f"ONNX ({precision})", result, tokenizer_problems),
                                          hint=verification_hint(precision in ("int8", "int4")))
        return result


def verification_hint(quantized: bool) -> str:
    """What to do about a failed verification."""
    if quantized:
        return ("quantized weights move logits; if the top-1 and greedy numbers look right, set the export "
                "option verify_tolerance higher, or export in full precision")
    return "the export does not compute what the PyTorch model computes: report it with the numbers above"


def failure_message(label: str, result: dict[str, Any], problems: list[str]) -> str:
    """The numbers of a failed verification, one line per prompt (`label` e.g. "ONNX (int4)")."""
    lines = [(f"{label} export differs from the PyTorch model: max |logit diff| {result['max_abs_diff']:.4g} "
              f"(tolerance {result['tolerance']:.4g}), top-1 match {result['top1_match']}, "
              f"greedy match {result['greedy_match']}/{result['prompts']} prompts")]
    for i, row in enumerate(result["rows"]):
        lines.append(f"  prompt {i}: max diff {row['max_abs_diff']:.4g}, mean diff {row['mean_abs_diff']:.4g}, "
                     f"top-1 {row['top1_match']}, greedy prefix {row['greedy_prefix_match']}/{row['greedy_len']}")
    lines += [f"  tokenizer: {p}" for p in problems]
    return "\n".join(lines)


class OrtDecoder:
    """The exported decoder graph in a plain `onnxruntime.InferenceSession`, fed by hand.

    Reads input/output names and cache shapes from `genai_config.json`, so it works for the
    builder's GQA graphs (no position_ids) and its MultiHeadAttention ones (with position_ids).
    """

    def __init__(self, folder: Path, threads: int | None = None):
        import onnxruntime as ort

        cfg = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))["model"]["decoder"]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / cfg["filename"]), options,
                                            providers=["CPUExecutionProvider"])
        self.names_in, self.names_out = cfg["inputs"], cfg["outputs"]
        self.layers, self.head_size = int(cfg["num_hidden_layers"]), int(cfg["head_size"])
        self.kv_heads = int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _cache_names(self, kind: str) -> list[tuple[str, str]]:
        """(input name, output name) of every cache tensor; kind is 'key' or 'value'."""
        past, present = self.names_in[f"past_{kind}_names"], self.names_out[f"present_{kind}_names"]
        return [(past % i, present % i) for i in range(self.layers)]

    def empty_cache(self) -> dict[str, np.ndarray]:
        """Past key/values of length 0, in the dtypes the graph declares."""
        cache = {}
        for kind in ("key", "value"):
            for name, _ in self._cache_names(kind):
                dtype = _ORT_DTYPES.get(self.inputs[name].type, np.float32)
                cache[name] = np.zeros((1, self.kv_heads, 0, self.head_size), dtype=dtype)
        return cache

    def step(self, ids: list[int], cache: dict[str, np.ndarray], past_len: int) -> tuple[np.ndarray, dict]:
        """Run `ids` after `past_len` cached tokens; returns (last-position logits float32, new cache)."""
        total = past_len + len(ids)
        feed: dict[str, np.ndarray] = {
            self.names_in.get("input_ids", "input_ids"): np.asarray([ids], dtype=np.int64),
            self.names_in.get("attention_mask", "attention_mask"): np.ones((1, total), dtype=np.int64),
        }
        position = self.names_in.get("position_ids", "position_ids")
        if position in self.inputs:
            feed[position] = np.arange(past_len, total, dtype=np.int64)[None, :]
        feed.update(cache)
        values = dict(zip(self.outputs, self.session.run(None, feed)))
        new_cache = {past: values[present] for kind in ("key", "value") for past, present in self._cache_names(kind)}
        logits = values[self.names_out.get("logits", "logits")][0, -1].astype(np.float32)
        return logits, new_cache

    def next_logits(self, prompt_ids: list[int]) -> np.ndarray:
        """Next-token logits after the prompt (float32 [vocab])."""
        logits, _ = self.step(list(prompt_ids), self.empty_cache(), 0)
        return logits

    def greedy(self, prompt_ids: list[int], max_new_tokens: int, eos_ids: set[int] = frozenset()) -> list[int]:
        """Greedy continuation using the KV cache, stopping after an eos id (included)."""
        logits, cache = self.step(list(prompt_ids), self.empty_cache(), 0)
        out, past = [], len(prompt_ids)
        while len(out) < max_new_tokens:
            token = int(np.argmax(logits))
            out.append(token)
            if token in eos_ids or len(out) == max_new_tokens:
                break
            logits, cache = self.step([token], cache, past)
            past += 1
        return out


class GenaiGreedy:
    """Greedy decoding and tokenization with onnxruntime-genai (the runtime `OnnxRuntime` uses)."""

    def __init__(self, folder: Path):
        import onnxruntime_genai as og

        self.og = og
        self.model = og.Model(str(folder))
        self.tokenizer = og.Tokenizer(self.model)

    def greedy(self, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation of `prompt_ids` (stops after eos, which is included)."""
        if max_new_tokens <= 0:
            return []
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(prompt_ids) + max_new_tokens, do_sample=False)
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(np.asarray([prompt_ids], dtype=np.int32))
        out: list[int] = []
        while not generator.is_done() and len(out) < max_new_tokens:
            generator.generate_next_token()
            out.append(int(generator.get_next_tokens()[0]))
        return out


def check_tokenizers(folder: Path, prompts: list[list[dict[str, Any]]], refs: list[Reference],
                     genai: GenaiGreedy) -> list[str]:
    """Problems (empty when none) with the exported folder's tokenizers against the reference ids:
    the chat template rendered by transformers from `folder`, onnxruntime-genai's encode of the
    same text, and its decode of the greedy ids."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder))
    problems = []
    for i, (messages, ref) in enumerate(zip(prompts, refs)):
        ids = render_ids(hf, messages)
        if ids != ref.prompt_ids:
            problems.append(f"prompt {i}: the exported chat template gives {len(ids)} ids, reference "
                            f"{len(ref.prompt_ids)} (first difference at {_first_diff(ids, ref.prompt_ids)})")
            continue
        text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        og_ids = [int(t) for t in genai.tokenizer.encode(text)]
        if og_ids != ref.prompt_ids:
            problems.append(f"prompt {i}: onnxruntime-genai encodes to {len(og_ids)} ids, reference "
                            f"{len(ref.prompt_ids)} (first difference at {_first_diff(og_ids, ref.prompt_ids)})")
        if ref.greedy_ids:
            expected = hf.decode(ref.greedy_ids, skip_special_tokens=True)
            got = genai.tokenizer.decode(np.asarray(ref.greedy_ids, dtype=np.int32))
            if got != expected:
                problems.append(f"prompt {i}: onnxruntime-genai decodes {got!r}, transformers {expected!r}")
    return problems


def _first_diff(a: list[int], b: list[int]) -> int:
    """Index of the first position where two id lists differ."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
