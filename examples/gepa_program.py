"""GEPA on a tiny DSPy program -> apply_model: prompt optimization from traces with `mason.tuning`.

It needs an OpenAI-compatible endpoint. Offline, serve the built-in SmolLM2-135M with llama.cpp:

    python -m llama_cpp.server --port 8080 --n_ctx 2048 --model \\
        "$(python -c 'from mason.models import BUILTIN_MODELS as B; print(B["smollm2-135m-instruct"].locate())')"
    python examples/gepa_program.py --lm openai://smollm2@http://127.0.0.1:8080/v1

Any other endpoint works the same (`openai://gpt-4o-mini@https://proxy/v1`, `endpoint://host:8000/v1?model=m`,
or a model name with OPENAI_BASE set). The optimized program is saved with DSPy's own `save` in the
phase's folder; the script loads it back and asks it a question. `--budget` is GEPA's
`max_metric_calls` (a small model and a small budget: the point is the plumbing, not the score).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dspy

import mason

t = mason.tuning
HERE = Path(__file__).resolve().parent
TRACES = f"dataset://jsonl/{HERE / 'data' / 'support-traces.jsonl'}"


class Answer(dspy.Signature):
    """Answer the masonry question in one short sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def overlap(gold: dspy.Example, pred: dspy.Prediction, trace=None, pred_name=None, pred_trace=None) -> dspy.Prediction:
    """Share of the reference answer's words in the prediction, with feedback GEPA reflects on."""
    want = {w.strip(".,:;").lower() for w in gold.answer.split() if len(w) > 3}
    got = {w.strip(".,:;").lower() for w in str(getattr(pred, "answer", "") or "").split()}
    score = len(want & got) / len(want) if want else 0.0
    missing = ", ".join(sorted(want - got)) or "nothing"
    return dspy.Prediction(score=score, feedback=f"The answer should mention: {missing}. Reference: {gold.answer}")


def build_plan(lm: str, *, budget: int, workspace: str, examples: int) -> mason.tuning.Plan:
    gepa = t.Phase(
        name="gepa",
        source=t.Source(TRACES, score="helpfulness", min_score=0.5, limit=examples),
        curate=lambda records: t.to_dspy_examples(records, signature=Answer),
        optimize=t.DSPY_Teleprompt(dspy.Predict(Answer), teleprompter="GEPA", metric=overlap, lm=lm,
                                   reflection_adapter=t.lenient_adapter(), max_metric_calls=budget,
                                   reflection_minibatch_size=1, use_merge=False, num_threads=1, val_share=0.5),
        apply=t.apply_model,  # DSPy now runs on the LM the program was optimized with
    )
    return t.Plan([gepa], name="support-gepa", workspace=workspace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lm", required=True, help="openai://<model>@<base_url> or endpoint://<base_url>?model=<m>")
    parser.add_argument("--budget", type=int, default=8, help="GEPA's max_metric_calls")
    parser.add_argument("--examples", type=int, default=4, help="traces to optimize on (half score candidates)")
    parser.add_argument("--workspace", default=".mason")
    args = parser.parse_args()
    dspy.configure(adapter=t.lenient_adapter())  # small local models rarely follow DSPy's field markers
    result = t.run(build_plan(args.lm, budget=args.budget, workspace=args.workspace, examples=args.examples))
    program = t.load_program(result.by_phase["gepa"], dspy.Predict(Answer))
    print(f"program: {result.by_phase['gepa'].uri}")
    print(f"instructions: {program.signature.instructions!r}")
    print(f"answer: {program(question='What holds bricks together?').answer!r}")


if __name__ == "__main__":
    main()
