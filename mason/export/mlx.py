"""MLX export through mlx-lm's `convert`, verified by running the converted weights in MLX.

mlx-lm reads the local Hugging Face folder (no hub access) and writes MLX safetensors, the
config (with a `quantization` entry when quantized) and the tokenizer files. MASON adds a
small `mlx_format` marker file so `detect_format` recognizes the folder even unquantized
(an fp32 MLX folder otherwise looks like a transformers folder).

MLX runs on Apple silicon and, with `mlx[cpu]`, on Linux CPUs: export and verification work
on either; only the speed differs.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from mason.core.errors import MasonError
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError
from mason.export.verify import TOLERANCES, compare, reference_outputs, summarize

MARKER = "mlx_format"
INSTALL_HINT = 'pip install "mason[mlx]"'
BITS = (4, 8)
DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
GREEDY_TOKENS = 16
DEFAULT_PROMPTS = [[{"role": "user", "content": "What is a keystone?"}]]


def require() -> tuple[Any, Any]:
    """Import (mlx.core, mlx_lm).

    Raises:
        MasonError: MLX or mlx-lm is not installed (the hint says how to install them).
    """
    try:
        return importlib.import_module("mlx.core"), importlib.import_module("mlx_lm")
    except ImportError as e:
        raise MasonError(f"MLX export needs mlx and mlx-lm, which are not installed ({e.name or e})",
                         hint=INSTALL_HINT) from None


def settings(options: dict[str, Any]) -> dict[str, Any]:
    """The MLX options, checked: `mlx_quantize` (None, 4 or 8 bits), `mlx_q_group_size` (64),
    `mlx_dtype` (None keeps the stored dtype, else float32/float16/bfloat16). Adds the
    tolerance key `dtype`.

    Raises:
        MasonError: an unsupported value.
    """
    bits = options.get("mlx_quantize")
    if isinstance(bits, str):
        digits = "".join(c for c in bits if c.isdigit())
        bits = int(digits) if digits else None
    if bits in (False, 0):
        bits = None
    if bits is not None and bits not in BITS:
        raise MasonError(f"mlx_quantize {options.get('mlx_quantize')!r} is not supported",
                         hint="use 4 or 8 (bits), or leave it empty for full precision")
    dtype = options.get("mlx_dtype")
    if dtype is not None and dtype not in DTYPES:
        raise MasonError(f"mlx_dtype {dtype!r} is not supported", hint=f"use one of {', '.join(DTYPES)}")
    group = int(options.get("mlx_q_group_size") or 64)
    tol_key = f"int{bits}" if bits else DTYPES.get(dtype or "float32", "fp32")
    return {"bits": bits, "group_size": group, "dtype": dtype, "tolerance_key": tol_key}


def _stored_dtype(model_dir: Path) -> str | None:
    """The dtype the merged folder's config declares (transformers 5 writes `dtype`)."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cfg.get("dtype") or cfg.get("torch_dtype")


def fix_rope_config(config_file: Path) -> list[str]:
    """Copy transformers 5's `rope_parameters` to the top-level keys mlx-lm reads; returns what
    was added.

    transformers 5 writes `rope_parameters: {rope_theta, rope_type, ...}` and drops the top-level
    `rope_theta`/`rope_scaling`; mlx-lm 0.32's Llama reads only `rope_theta` (default 10000), so
    SmolLM2 (theta 100000) converted as-is gives logits off by ~3 (measured). Nested per-layer-type
    parameters are left alone (verification reports them if they matter).
    """
    cfg = json.loads(config_file.read_text(encoding="utf-8"))
    params = cfg.get("rope_parameters")
    if not isinstance(params, dict) or "rope_theta" not in params:
        return []
    fixes = []
    if "rope_theta" not in cfg:
        cfg["rope_theta"] = params["rope_theta"]
        fixes.append(f"rope_theta={params['rope_theta']}")
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default" and not cfg.get("rope_scaling"):
        cfg["rope_scaling"] = {"rope_type": kind, "type": kind,
                               **{k: v for k, v in params.items() if k not in ("rope_theta", "rope_type", "type")}}
        fixes.append(f"rope_scaling={kind}")
    if fixes:
        config_file.write_text(json.dumps(cfg, indent=4) + "\n", encoding="utf-8")
    return fixes


class MlxExporter:
    """MLX folder (safetensors + config + tokenizer + `mlx_format` marker), optionally quantized.

    Options: `mlx_quantize` (4 | 8 | None), `mlx_q_group_size` (default 64), `mlx_dtype`
    (float32 | float16 | bfloat16; default: the merged folder's dtype), `verify_tolerance`.
    """

    name = "mlx"

    def export(self, job: ExportJob) -> ExportOutput:
        """Convert `job.model_dir` into `job.out_dir` with mlx-lm.

        Raises:
            MasonError: mlx/mlx-lm missing, a bad option, or mlx-lm cannot convert this model
                (`job.out_dir` is left empty).
        """
        mx, mlx_lm = require()
        cfg = settings(job.options)
        model_dir, out = Path(job.model_dir), Path(job.out_dir)
        # convert refuses an existing folder: write a subfolder, then move its files up
        staging = out / ".mlx-convert"
        log = io.StringIO()
        dtype = cfg["dtype"] or _stored_dtype(model_dir)
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(log):
                mlx_lm.convert(hf_path=str(model_dir), mlx_path=str(staging), quantize=cfg["bits"] is not None,
                               q_bits=cfg["bits"], q_group_size=cfg["group_size"] if cfg["bits"] else None,
                               dtype=dtype if dtype in DTYPES else None)
            for child in staging.iterdir():
                shutil.move(str(child), str(out / child.name))
            staging.rmdir()
        except Exception as e:  # mlx-lm raises ValueError, KeyError, ... for unsupported models
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            tail = "\n".join(log.getvalue().strip().splitlines()[-10:])
            raise MasonError(f"MLX export of {model_dir} failed: {type(e).__name__}: {e}" + (f"\n{tail}" if tail else ""),
                             hint="mlx-lm supports Llama, Mistral, Qwen, Phi, Gemma, SmolLM... models; "
                                  "export this one as gguf or merged instead") from e
        fixes = fix_rope_config(out / "config.json")
        seconds = time.perf_counter() - started
        version = getattr(mlx_lm, "__version__", None)
        marker = {"format": "mlx", "mlx_lm": version, "quantization": cfg["bits"],
                  "group_size": cfg["group_size"] if cfg["bits"] else None, "dtype": dtype}
        (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        details = {
            "quantization": cfg["bits"], "group_size": marker["group_size"], "dtype": dtype,
            "weights_bytes": sum((out / f).stat().st_size for f in files if f.endswith(".safetensors")),
            "export_seconds": round(seconds, 2), "tool": "mlx-lm convert", "config_fixes": fixes,
            "versions": {"mlx": getattr(mx, "__version__", None), "mlx_lm": version},
        }
        return ExportOutput(path=out, files=files, details=details)

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        """Load the MLX folder with mlx-lm and compare with PyTorch on `job.verify_prompts`:
        next-token logits on the reference ids, greedy continuations, tokenizer parity.

        Returns:
            `summarize`'s verdict plus `tokenizer_match`.
        Raises:
            ExportVerificationError: beyond tolerance, a top-1 mismatch (unquantized/8-bit), or
                the folder's tokenizer renders other ids than the reference.
        """
        from mason.export.onnx import failure_message, verification_hint
        from mason.runtime.mlx import mlx_prompt_ids

        mx, mlx_lm = require()
        cfg = settings(job.options)
        tolerance = float(job.options.get("verify_tolerance") or TOLERANCES[cfg["tolerance_key"]])
        prompts = job.verify_prompts or DEFAULT_PROMPTS
        refs = reference_outputs(Path(job.model_dir), prompts, GREEDY_TOKENS)
        model, tokenizer = mlx_lm.load(str(output.path))
        rows, problems = [], []
        for i, (messages, ref) in enumerate(zip(prompts, refs)):
            ids = mlx_prompt_ids(tokenizer, messages)
            if ids != ref.prompt_ids:
                problems.append(f"prompt {i}: the MLX folder's tokenizer renders {len(ids)} ids, "
                                f"reference {len(ref.prompt_ids)}")
            logits = model(mx.array([ref.prompt_ids]))[0, -1].astype(mx.float32)
            rows.append(compare(ref, np.array(logits), mlx_greedy(model, tokenizer, ref.prompt_ids,
                                                                  len(ref.greedy_ids))))
        result = summarize(rows, tolerance, "mlx", cfg["tolerance_key"], require_top1=cfg["bits"] != 4)
        result["tokenizer_match"] = not problems
        if problems or not result["passed"]:
            result["passed"] = False
            raise ExportVerificationError(failure_message(f"MLX ({cfg['tolerance_key']})", result, problems),
                                          hint=verification_hint(cfg["bits"] is not None))
        return result


def mlx_greedy(model: Any, tokenizer: Any, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy continuation with mlx-lm's KV-cached `generate_step` (stops after eos, included)."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    if max_new_tokens <= 0:
        return []
    out: list[int] = []
    eos = set(tokenizer.eos_token_ids)
    for token, _ in generate_step(mx.array(prompt_ids), model, max_tokens=max_new_tokens):
        out.append(int(token))
        if out[-1] in eos or len(out) >= max_new_tokens:
            break
    return out
