"""Tuning from traces and datasets (the mahsm v0.3 API): `import mason; mason.tuning.…`.

An orchestrator like `mason.pipeline`: a `Plan` of `Phase`s, each collect → curate → optimize →
apply, run as one tracker run in a MASON workspace, reusing the training stage (TRL SFT/DPO), the
tracker, the workspace cache and the evaluation guards' exit code.

    import mason
    t = mason.tuning
    phase = t.Phase(
        name="sft",
        source=t.Source("trace://langfuse/support/qa", since="2026-11-01", min_score=0.5),
        curate=t.to_sft,
        optimize=t.TRL_SFT("smollm2-135m-instruct", lora=True, max_steps=30),
        apply=t.apply_lora,
    )
    artefacts = t.run(t.Plan([phase], guard=t.metric_guard(lambda a: 1.0, 0.5)))

Owns: the types (`types`), records and sources (`records`, `sources`, `langfuse`), transforms,
optimizers (`trl`, `dspy_opt`), apply (`apply`, `gguf_lora`), guards and the runner. Importing it
imports no DSPy, LangFuse SDK, eval-protocol, torch or TRL: each is imported by the function that uses it.
"""

from __future__ import annotations

from mason.tuning.apply import active, apply_lora, apply_model, lm_from_uri, parse_model_uri
from mason.tuning.dspy_opt import DSPY_Teleprompt, lenient_adapter, load_program
from mason.tuning.guards import GuardOutcome, PlanGuardFailed, metric_guard, pytest_guard
from mason.tuning.runner import PlanResult, collect_from, lineage, main, run
from mason.tuning.sources import known_uris, register_source
from mason.tuning.transforms import to_dspy_examples, to_preferences, to_sft, to_trajectories
from mason.tuning.trl import TRL_DPO, TRL_SFT
from mason.tuning.types import Artefact, Phase, PhaseContext, Plan, Source

__all__ = [
    "Artefact", "Source", "Phase", "Plan", "PhaseContext", "PlanResult",
    "run", "collect_from", "main", "lineage",
    "to_sft", "to_preferences", "to_trajectories", "to_dspy_examples",
    "TRL_SFT", "TRL_DPO", "DSPY_Teleprompt", "load_program", "lenient_adapter",
    "apply_lora", "apply_model", "active", "lm_from_uri", "parse_model_uri",
    "metric_guard", "pytest_guard", "GuardOutcome", "PlanGuardFailed",
    "register_source", "known_uris",
]
