"""The knowledge probe: at each evaluation during training, ask a small fixed set of held-out
questions closed-book and score the answers by key span (`mason.data.answers`).

The score is logged as `eval_knowledge` (the share answered right) and, with `select_by:
knowledge` (or `auto` when probe questions exist), picks the best checkpoint and drives early
stopping: over-training on new facts raises hallucination (arXiv 2405.05904), so the run keeps the
checkpoint that knows the most rather than the last one. The probe questions are the generate
task's held-out questions marked `meta.probe` (`synthetic_data.knowledge.probe_questions`); the
evaluation task leaves them out, so the final knowledge score is measured on questions that did
not choose the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mason.data.answers import is_correct

#: the metric name the Trainer sees (transformers prefixes eval metrics with `eval_`)
METRIC = "eval_knowledge"


@dataclass(frozen=True)
class ProbeQuestion:
    """One probe question: the conversation up to the answer, and the spans a right answer contains."""

    prompt: list[dict[str, Any]]
    answers: list[str]


def probe_questions(samples: list[Any]) -> list[ProbeQuestion]:
    """The probe questions among eval samples: rows with `meta.probe` and `meta.answers`."""
    out = []
    for s in samples:
        row = getattr(s, "row", s)
        meta = row.get("meta") or {}
        messages = row.get("messages") or []
        answers = meta.get("answers")
        if not meta.get("probe") or not answers or not messages or messages[-1].get("role") != "assistant":
            continue
        out.append(ProbeQuestion([dict(m) for m in messages[:-1]], [str(a) for a in answers]))
    return out


def score(model: Any, tokenizer: Any, questions: list[ProbeQuestion], max_new_tokens: int) -> float:
    """The share of `questions` the model answers right, greedily, closed-book."""
    from mason.train.outputs import answer_prompts

    answers = answer_prompts(model, tokenizer, [q.prompt for q in questions], max_new_tokens)
    return sum(is_correct(a["answer"], q.answers) for a, q in zip(answers, questions, strict=True)) / len(questions)


def knowledge_probe(questions: list[ProbeQuestion], tokenizer: Any, emit: Any, max_new_tokens: int) -> Any:
    """A TrainerCallback that adds `eval_knowledge` to every evaluation's metrics (before early
    stopping and checkpoint selection read them) and emits it with `emit(step, {name: value})`."""
    from transformers import TrainerCallback

    class KnowledgeProbe(TrainerCallback):
        is_knowledge_probe = True

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            if model is None or metrics is None:
                return
            training = model.training
            value = score(model, tokenizer, questions, max_new_tokens)
            model.train(training)
            metrics[METRIC] = value
            emit(state.global_step, {"eval_knowledge": value})

    return KnowledgeProbe()
