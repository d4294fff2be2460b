"""GGUF tensor types: which type each tensor gets for an outtype, numpy conversion, K-quants.

`f32`, `f16`, `bf16`, `q8_0` and `q4_0` are written directly with the `gguf` package's numpy
quantizers. K-quants (`q4_k_m`, `q5_k_m`, `q6_k`, ...) need llama.cpp's quantizer: an f16 GGUF
is written first and requantized with llama-cpp-python's `llama_model_quantize`, in a child
process (a native crash must not take the caller down).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mason.core.errors import MasonError

#: outtypes written in pure Python -> (GGMLQuantizationType name, LlamaFileType name)
DIRECT: dict[str, tuple[str, str]] = {
    "f32": ("F32", "ALL_F32"),
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "q4_0": ("Q4_0", "MOSTLY_Q4_0"),
}

#: outtypes made by llama.cpp's quantizer -> llama_cpp ftype constant
LLAMA_QUANTS: dict[str, str] = {
    "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "q3_k_s": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "q3_k_m": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "q3_k_l": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "q4_k_s": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_s": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
}

_ALIASES = {"fp32": "f32", "float32": "f32", "fp16": "f16", "float16": "f16", "q4_k": "q4_k_m", "q5_k": "q5_k_m",
            "q3_k": "q3_k_m"}

#: outtypes of 4 bits or fewer: on near-flat tiny models their top-1 token may flip
LOW_BIT = {"q4_0", "q4_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m"}


def normalize_outtype(value: Any) -> str:
    """The canonical outtype name for `value` (case and common aliases folded).

    Raises:
        MasonError: an outtype GGUF export does not write, listing those it does.
    """
    name = str(value or "q8_0").strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in DIRECT and name not in LLAMA_QUANTS:
        raise MasonError(
            f"unknown GGUF quantization {value!r}",
            hint=f"choose one of: {', '.join([*DIRECT, *LLAMA_QUANTS])}",
        )
    return name


@dataclass(frozen=True)
class TensorPlan:
    """The type one tensor is written in, and why it differs from the outtype (if it does)."""

    qtype: str  # GGMLQuantizationType name
    reason: str | None = None


def plan_tensor(gguf_name: str, shape: tuple[int, ...], outtype: str, is_output: bool) -> TensorPlan:
    """Which type `gguf_name` gets for a direct outtype.

    1-D tensors (norms, biases, rope factors) and GPT-2's learned positions stay f32, as
    llama.cpp's converter keeps them.
    With q4_0 the output projection (or the tied token embedding that serves as output) is
    written as q8_0: llama.cpp's own quantizer also keeps it at higher precision (Q6_K), because
    4-bit logits lose the most. A row length that is not a multiple of the quant block falls back
    to f16.
    """
    import gguf

    qtype, _ = DIRECT[outtype]
    if len(shape) <= 1 or gguf_name == "position_embd.weight":
        return TensorPlan("F32")
    if outtype == "q4_0" and is_output:
        qtype, why = "Q8_0", "output layer kept at q8_0 (llama.cpp keeps it above 4 bits too)"
    else:
        why = None
    block, _ = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]]
    if shape[-1] % block:
        return TensorPlan("F16", f"row length {shape[-1]} is not a multiple of the {qtype} block ({block}): f16")
    return TensorPlan(qtype, why)


def convert(array: np.ndarray, qtype: str) -> tuple[np.ndarray, Any]:
    """`array` (float32) in `qtype`: (data for GGUFWriter.add_tensor, raw_dtype or None)."""
    import gguf

    if qtype == "F32":
        return np.ascontiguousarray(array, dtype=np.float32), None
    if qtype == "F16":
        return np.ascontiguousarray(array, dtype=np.float16), None
    t = gguf.GGMLQuantizationType[qtype]
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), t), t


def file_type(outtype: str) -> int:
    """The `general.file_type` value (gguf.LlamaFileType) of a direct outtype."""
    import gguf

    return int(gguf.LlamaFileType[DIRECT[outtype][1]])


def llama_quantize(src: Path, dst: Path, outtype: str, nthread: int = 0) -> None:
    """Requantize the GGUF `src` to the K-quant (or legacy quant) `outtype` with llama.cpp.

    Runs in a child process. Raises:
        MasonError: llama-cpp-python is missing (with the install hint), or quantizing failed.
    """
    from mason.runtime.llamacpp import require_llama_cpp, run_isolated

    require_llama_cpp(purpose=f"GGUF quantization {outtype}",
                      alternative="or choose quantization q8_0 or q4_0, which need no llama.cpp")
    result = run_isolated("mason.export.gguf_quant:quantize_worker",
                          {"src": str(src), "dst": str(dst), "ftype": LLAMA_QUANTS[outtype], "nthread": nthread},
                          what=f"llama.cpp quantization to {outtype}")
    if result["rc"] != 0 or not dst.is_file():
        raise MasonError(f"llama.cpp could not quantize to {outtype} (return code {result['rc']})",
                         hint="try q8_0 or q4_0, which are written without llama.cpp")


def quantize_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Child-process side of `llama_quantize` (imports llama_cpp)."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, payload["ftype"])
    params.nthread = int(payload["nthread"])
    rc = llama_cpp.llama_model_quantize(payload["src"].encode(), payload["dst"].encode(), ctypes.byref(params))
    return {"rc": int(rc)}


def ftype_of_quant(outtype: str) -> int:
    """llama.cpp's ftype number of a llama.cpp-made outtype (same numbering as gguf.LlamaFileType)."""
    import gguf

    return int(gguf.LlamaFileType[LLAMA_QUANTS[outtype].removeprefix("LLAMA_FTYPE_")])
