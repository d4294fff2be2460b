"""A PEFT LoRA adapter as a GGUF LoRA file, for llama.cpp (`--lora FILE`, llama-cpp-python's `lora_path`).

The layout is llama.cpp's `convert_lora_to_gguf.py`: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`; for each adapted weight `<gguf name>.lora_a` (PEFT's `lora_A`, r x in) and
`<gguf name>.lora_b` (`lora_B`, out x r), named with gguf's tensor map like MASON's GGUF export, and
for the LLAMA arch `lora_b` of q/k permuted like the base weights (`mason.export.gguf.permute_qk`):
the product B·A then has the rows the converted base model has. Tensors stay f32 (adapters are small).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

_PREFIX = "base_model.model."


def _adapter_tensors(adapter_dir: Path) -> dict[str, Any]:
    from safetensors import safe_open

    files = sorted(adapter_dir.glob("adapter_model*.safetensors"))
    if not files:
        raise MasonError(f"{adapter_dir}: no adapter_model.safetensors", hint="save the adapter with PEFT's save_pretrained")
    out = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (a safetensors handle)
                out[name] = f.get_tensor(name).float().numpy()
    return out


def write_lora_gguf(adapter_dir: str | Path, base_model_dir: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Write `adapter_dir` (PEFT LoRA) as a GGUF LoRA for the base model in `base_model_dir`.

    Returns:
        `{"path", "architecture", "alpha", "rank", "tensors"}`.
    Raises:
        MasonError: not a LoRA adapter, an architecture MASON's GGUF export does not know, a tensor
            with no GGUF counterpart, or trained full modules (`modules_to_save`) GGUF LoRA cannot hold.
    """
    import gguf

    from mason.export.gguf import permute_qk
    from mason.export.gguf_shape import model_shape, read_config

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MasonError(f"{adapter_dir} is not a PEFT adapter folder ({e})") from None
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise MasonError(f"{adapter_dir}: a {cfg.get('peft_type')} adapter; GGUF adapters are LoRA only")
    rank, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    if cfg.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)
    shape = model_shape(read_config(Path(base_model_dir)))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[shape.arch], shape.n_layers)
    pairs: dict[str, dict[str, Any]] = {}
    for key, data in _adapter_tensors(adapter_dir).items():
        hf = key.removeprefix(_PREFIX)
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in hf:
                base = hf.split(marker)[0] + ".weight"
                pairs.setdefault(base, {})[part] = data
                break
        else:
            raise MasonError(f"{adapter_dir}: tensor {key!r} is not a LoRA pair (modules_to_save?)",
                             hint="GGUF LoRA holds low-rank pairs only; merge the adapter and export GGUF instead")
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[shape.arch]])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    count = 0
    for hf_name, pair in sorted(pairs.items()):
        if set(pair) != {"lora_A", "lora_B"}:
            raise MasonError(f"{adapter_dir}: {hf_name} has only {', '.join(pair)}")
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        if name is None:
            raise MasonError(f"{shape.hf_arch} weight {hf_name!r} has no GGUF counterpart")
        lora_b = pair["lora_B"]
        if shape.permute and hf_name.endswith("q_proj.weight"):
            lora_b = permute_qk(lora_b, shape.n_head, shape.n_head)
        elif shape.permute and hf_name.endswith("k_proj.weight"):
            lora_b = permute_qk(lora_b, shape.n_head, shape.n_head_kv)
        writer.add_tensor(f"{name}.lora_a", pair["lora_A"].astype("float32"))
        writer.add_tensor(f"{name}.lora_b", lora_b.astype("float32"))
        count += 2
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"path": str(out_path), "architecture": shape.arch.lower(), "alpha": alpha, "rank": rank, "tensors": count}
