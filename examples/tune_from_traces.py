"""Production traces -> to_sft -> TRL_SFT (LoRA) -> apply_lora, with a guard: `mason.tuning` end to end.

Offline, with the traces exported beside this file (what `mason.tuning.collect_from` returns for
`trace://langfuse/support/qa`, saved as JSONL):

    python examples/tune_from_traces.py                    # LoRA on the built-in SmolLM2-135M
    python examples/tune_from_traces.py --model tiny       # a tiny test model: seconds

From LangFuse (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_HOST set):

    python examples/tune_from_traces.py --source trace://langfuse/support/qa

Then `mason runs show latest -w .mason` lists the phase, the training task, metrics and artifacts;
`.mason/active.json` names the active adapter; `--gguf` also writes it as a GGUF LoRA for llama.cpp
(`python -m llama_cpp.server --model BASE.gguf --lora_path .../adapter.gguf`). A failed guard exits 4.
"""

from __future__ import annotations

import argparse
import functools
import math
from pathlib import Path

import mason

t = mason.tuning
HERE = Path(__file__).resolve().parent
TRACES = f"dataset://jsonl/{HERE / 'data' / 'support-traces.jsonl'}"


def build_plan(source: str, model: str, *, steps: int, gguf: bool, workspace: str) -> mason.tuning.Plan:
    sft = t.Phase(
        name="sft",
        # only the answers users rated helpful
        source=t.Source(source, score="helpfulness", min_score=0.5),
        curate=t.to_sft,
        optimize=t.TRL_SFT(model, lora=True, max_steps=steps, batch_size=4, learning_rate=5e-4, lora_r=8),
        apply=functools.partial(t.apply_lora, gguf=gguf, ollama="support-sft"),
    )
    # the plan fails (exit code 4) unless training brought the loss down
    learned = t.metric_guard(lambda a: a["sft"].meta["metrics"].get("final_loss", math.inf)
                             - a["sft"].meta["metrics"].get("first_loss", 0.0), 0.0,
                             name="loss_drop", higher_is_better=False)
    return t.Plan([sft], guard=learned, name="support-sft", workspace=workspace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=TRACES, help="trace://langfuse/<project>/<task> or dataset://jsonl/<path>")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="base model, or `tiny` for a test model")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--gguf", action="store_true", help="also write the adapter as GGUF LoRA")
    parser.add_argument("--workspace", default=".mason")
    args = parser.parse_args()
    model = args.model
    if model == "tiny":
        from mason.models.tiny import build_tiny_model

        folder = Path(args.workspace) / "tiny-model"
        model = str(folder if (folder / "config.json").is_file() else build_tiny_model(folder))
    t.main(build_plan(args.source, model, steps=args.steps, gguf=args.gguf, workspace=args.workspace))


if __name__ == "__main__":
    main()
