"""The evaluation judge against a real llama.cpp server (SmolLM2-135M): verdicts in the schema's shape
through the OpenAI-compatible path, and the request cache answering a second run.

SmolLM2-135M is a weak judge: the test checks the wire (schema-constrained JSON, scale bounds, reasons,
the cache), not the judgement.
"""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from mason.evaluate.config import EvaluationConfig

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip('llama-cpp-python is not installed: pip install "mason[llama]"', allow_module_level=True)

# the server fixture of the teacher tests (skips the module cleanly without the GGUF or the server extra)
from tests.integration.test_llamacpp_teacher import llama_server  # noqa: F401

ROWS = [
    {"question": "What is the capital of France?", "prediction": "The capital of France is Paris.",
     "reference": "Paris.", "source": "Paris is the capital and largest city of France."},
    {"question": "What is the capital of France?", "prediction": "Bananas are yellow.",
     "reference": "Paris.", "source": "Paris is the capital and largest city of France."},
]


def test_llamacpp_judge_scores_within_the_scale_and_caches(llama_server, tmp_path):  # noqa: F811
    from mason.evaluate.judge import judge_answers

    cfg = EvaluationConfig(llm_judge={"model": "llamacpp/smollm2", "base_url": llama_server, "max_tokens": 96,
                                      "timeout": 120, "max_retries": 1, "max_concurrency": 1,
                                      "rubrics": ["faithfulness", {"name": "tone", "criteria": "Polite.",
                                                                   "scale": [0, 10]}]})
    cache = tmp_path / "requests.sqlite"

    def run():
        return asyncio.run(judge_answers(cfg.llm_judge, cfg.rubrics(), {"tuned": ROWS}, base_dir=tmp_path,
                                         cache_path=cache))

    first = run()
    print(f"\nllama.cpp judge: {first.scores}, reasons {first.reasons}, unscored {first.unscored}")
    scored = 0
    for rubric, (lo, hi) in (("faithfulness", (1, 5)), ("tone", (0, 10))):
        for score, reason in zip(first.scores["tuned"][rubric], first.reasons["tuned"][rubric], strict=True):
            if score is not None:
                scored += 1
                assert lo <= score <= hi and isinstance(reason, str)
    # the schema constrains decoding: a 135M model still answers in shape (at most one unreadable)
    assert scored >= 3
    assert first.stats["requests_sent"] >= 4
    second = run()
    assert second.scores == first.scores and second.stats["requests_sent"] == 0
