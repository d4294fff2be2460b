"""The `merged` and `adapter` formats: plain Hugging Face folders, verified with transformers.

`merged` is the base model with the LoRA adapter folded in (safetensors, tokenizer and chat
template), what every runtime and converter takes. `adapter` is the PEFT adapter folder as PEFT
and vLLM load it (`adapter_config.json` + `adapter_model.safetensors`), plus the tokenizer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError
from mason.export.verify import compare, reference_outputs, summarize


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _verify_transformers(job: ExportJob, model: Any, dtype: str) -> dict[str, Any]:
    """Compare a loaded transformers model with the reference (the merged folder) on the job's prompts."""
    import torch

    refs = reference_outputs(job.model_dir, job.verify_prompts)
    rows = []
    with torch.no_grad():
        for ref in refs:
            x = torch.tensor([ref.prompt_ids])
            logits = model(input_ids=x).logits[0, -1].float().numpy()
            gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                                 max_new_tokens=len(ref.greedy_ids) or 1)
            rows.append(compare(ref, logits, gen[0, x.shape[1]:].tolist()))
    result = summarize(rows, 1e-3, "transformers", dtype)
    if not result["passed"]:
        raise ExportVerificationError(
            f"the exported model disagrees with the trained one: max |logit diff| {result['max_abs_diff']:.4g} "
            f"(tolerance {result['tolerance']}), top-1 match {result['top1_match']}")
    return result


class MergedExporter:
    """The merged model folder (copied from the job's merged folder, which the stage built)."""

    name = "merged"

    def export(self, job: ExportJob) -> ExportOutput:
        shutil.copytree(job.model_dir, job.out_dir, dirs_exist_ok=True)
        return ExportOutput(job.out_dir, _files(job.out_dir), {"format": "safetensors"})

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(output.path, dtype=torch.float32).eval()
        return _verify_transformers(job, model, "fp32")


class AdapterExporter:
    """The PEFT adapter folder the training task wrote (LoRA methods only)."""

    name = "adapter"

    def export(self, job: ExportJob) -> ExportOutput:
        if job.adapter_dir is None:
            raise InputError("export format `adapter` needs a LoRA-trained model; this one was trained with `method: full`",
                             hint="export `merged` instead")
        shutil.copytree(job.adapter_dir, job.out_dir, dirs_exist_ok=True)
        return ExportOutput(job.out_dir, _files(job.out_dir), {"format": "peft"})

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = job.options.get("base_model_dir")
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(output.path)).eval()
        return _verify_transformers(job, model, "fp32")
