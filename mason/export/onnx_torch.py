"""ONNX export, with a KV cache, of the architectures onnxruntime-genai's model builder does not
cover (GPT-2 and DistilGPT2): `torch.onnx.export` (the TorchScript exporter, which needs no
onnxscript) traces the Hugging Face model itself, and the folder it writes is laid out as the
builder's is, so `mason.runtime.onnx.OnnxRuntime` and `OnnxExporter.verify` run it unchanged:

- `model.onnx`: inputs `input_ids`, `attention_mask` (the whole sequence), `position_ids` and
  `past_key_values.{i}.key/value` ([batch, kv heads, past, head size], past may be 0); outputs
  `logits` and `present.{i}.key/value` (past + new tokens);
- `genai_config.json` of onnxruntime-genai's generic `decoder` type, with
  `past_present_share_buffer: false` (the graph concatenates its cache, it does not write in place);
- int8/int4: the MatMul weights quantized weight-only (MatMulNBits, block 32), as the builder does
  (GPT-2's Conv1D layers are swapped for the equivalent Linear layers first, so they are MatMuls);
- weights over 1.5 GB go to one `model.onnx.data` beside the graph (protobuf's 2 GB limit).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

#: Hugging Face architectures exported with torch.onnx (the genai model builder lacks them)
TORCH_ARCHS = ("GPT2LMHeadModel",)
#: onnxruntime-genai's generic decoder-only model type
GENAI_TYPE = "decoder"
OPSET = 17
#: MatMulNBits block size (the tiny models' rows are 64 long)
BLOCK_SIZE = 32


def uses_torch_export(model_dir: Path) -> bool:
    """Whether `model_dir`'s architecture goes through torch.onnx instead of the genai builder."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return False
    archs = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    return bool(archs) and archs[0] in TORCH_ARCHS


def _linear_from_conv1d(model: Any) -> None:
    # transformers' Conv1D (GPT-2) computes x @ W + b with W [in, out]: the same as a Linear with W.T
    import torch
    from transformers.pytorch_utils import Conv1D

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                n_in, n_out = child.weight.shape
                linear = torch.nn.Linear(n_in, n_out, bias=child.bias is not None)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.T)
                    if child.bias is not None:
                        linear.bias.copy_(child.bias)
                setattr(parent, name, linear)


def _decoder(model: Any, n_layers: int) -> Any:
    # a module with flat tensor inputs/outputs around the HF model and its DynamicCache
    import torch
    from transformers.cache_utils import DynamicCache

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple:
            cache = DynamicCache(config=self.model.config)
            for i in range(n_layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return Decoder().eval()


def model_facts(config: Any) -> dict[str, int]:
    """Layers, heads, kv heads, head size, hidden size, context and vocabulary of a HF config."""
    heads = int(config.num_attention_heads)
    hidden = int(config.hidden_size)
    return {"layers": int(config.num_hidden_layers), "heads": heads, "hidden": hidden,
            "kv_heads": int(getattr(config, "num_key_value_heads", None) or heads),
            "head_size": int(getattr(config, "head_dim", None) or hidden // heads),
            "context": int(getattr(config, "max_position_embeddings", None) or 2048),
            "vocab": int(config.vocab_size)}


def export_onnx(model_dir: Path, out_dir: Path, precision: str) -> dict[str, Any]:
    """Write `model.onnx` and `genai_config.json` for `model_dir` into `out_dir` (tokenizer files
    are the caller's).

    Returns:
        details: the tool, opset and what the quantizer did.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    _linear_from_conv1d(model)
    facts = model_facts(model.config)
    n, past_len = 4, 3  # trace with a non-empty past: sizes 0 and 1 would be specialised
    past = [torch.zeros(1, facts["kv_heads"], past_len, facts["head_size"]) for _ in range(2 * facts["layers"])]
    inputs = (torch.ones(1, n, dtype=torch.long), torch.ones(1, past_len + n, dtype=torch.long),
              torch.arange(past_len, past_len + n)[None], *past)
    cache_in = [f"past_key_values.{i}.{kind}" for i in range(facts["layers"]) for kind in ("key", "value")]
    cache_out = [f"present.{i}.{kind}" for i in range(facts["layers"]) for kind in ("key", "value")]
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "sequence"},
                                       "attention_mask": {0: "batch", 1: "total_sequence"},
                                       "position_ids": {0: "batch", 1: "sequence"},
                                       "logits": {0: "batch", 1: "sequence"}}
    axes.update({name: {0: "batch", 2: "past_sequence"} for name in cache_in})
    axes.update({name: {0: "batch", 2: "total_sequence"} for name in cache_out})
    # traced into a scratch folder: past 2 GB the exporter writes one external file per tensor,
    # re-saved below as model.onnx (+ one model.onnx.data when large)
    scratch = Path(out_dir) / ".torch-onnx"
    scratch.mkdir()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python control flow it froze
            torch.onnx.export(_decoder(model, facts["layers"]), inputs, str(scratch / "model.onnx"), dynamo=False,
                              opset_version=OPSET, input_names=["input_ids", "attention_mask", "position_ids", *cache_in],
                              output_names=["logits", *cache_out], dynamic_axes=axes)
        write_genai_config(Path(out_dir), model, facts)
        del model
        details: dict[str, Any] = {"tool": "torch.onnx (TorchScript exporter)", "opset": OPSET}
        graph = _load(scratch / "model.onnx")
        if precision in ("int8", "int4"):
            graph = quantize_weights(graph, 8 if precision == "int8" else 4)
            details["quantized_matmuls"] = sum(node.op_type == "MatMulNBits" for node in graph.graph.node)
        save_graph(graph, Path(out_dir) / "model.onnx")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return details


def _load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))  # external data, if any, comes along


#: weights above this many bytes go to one `model.onnx.data` file (protobuf stops at 2 GB)
EXTERNAL_DATA_BYTES = 1_500_000_000


def save_graph(graph: Any, path: Path) -> None:
    """Save `graph` as `path`, its weights in `<name>.data` beside it when they are large."""
    import onnx

    weights = sum(len(t.raw_data) for t in graph.graph.initializer)
    if weights > EXTERNAL_DATA_BYTES:
        onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=1024)
    else:
        onnx.save_model(graph, str(path))


def quantize_weights(graph: Any, bits: int) -> Any:
    """`graph` with its MatMul weights quantized (MatMulNBits, weight-only, `bits` 8 or 4)."""
    import logging

    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(graph, bits=bits, block_size=BLOCK_SIZE, is_symmetric=True)
    log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = log.level
    log.setLevel(logging.WARNING)  # it logs every node it looks at
    try:
        quantizer.process()
    finally:
        log.setLevel(level)
    return quantizer.model.model


def _token_id(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def write_genai_config(out_dir: Path, model: Any, facts: dict[str, int]) -> None:
    """genai_config.json for the exported graph (onnxruntime-genai's `decoder` type)."""
    gen = getattr(model, "generation_config", None)
    config = model.config
    eos = _token_id(getattr(gen, "eos_token_id", None) if gen is not None else None) or config.eos_token_id
    bos = getattr(gen, "bos_token_id", None) if gen is not None else None
    pad = getattr(gen, "pad_token_id", None) if gen is not None else None
    eos_first = eos[0] if isinstance(eos, list) else eos
    genai = {
        "model": {
            "bos_token_id": bos if bos is not None else config.bos_token_id,
            "context_length": facts["context"],
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": facts["head_size"],
                "hidden_size": facts["hidden"],
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "position_ids": "position_ids", "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": facts["heads"],
                "num_hidden_layers": facts["layers"],
                "num_key_value_heads": facts["kv_heads"],
            },
            "eos_token_id": eos,
            "pad_token_id": pad if pad is not None else (config.pad_token_id if config.pad_token_id is not None
                                                         else eos_first),
            "type": GENAI_TYPE,
            "vocab_size": facts["vocab"],
        },
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
                   "max_length": facts["context"], "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                   "num_return_sequences": 1, "past_present_share_buffer": False, "repetition_penalty": 1.0,
                   "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    }
    (Path(out_dir) / "genai_config.json").write_text(json.dumps(genai, indent=4), encoding="utf-8")
