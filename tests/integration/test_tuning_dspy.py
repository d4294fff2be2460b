"""DSPy through a real OpenAI-compatible LM: llama.cpp's server with the built-in SmolLM2-135M.
`apply_model` reaches it by each URI form; the GEPA example (a tiny program, a small budget) saves a
program that is reloaded and answers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mason
from mason.pipeline.tracker import Tracker
from tests.helpers import llama_server

pytestmark = pytest.mark.slow
if llama_server.skip_reason():
    pytest.skip(llama_server.skip_reason(), allow_module_level=True)
dspy = pytest.importorskip("dspy")
t = mason.tuning
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gepa_program.py"


@pytest.fixture(scope="module")
def smollm2_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server.LlamaServer(llama_server.smollm2_gguf(), log) as url:
        yield url


@pytest.fixture
def offline_dspy(monkeypatch, tmp_path):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")  # DSPy's model metadata: the bundled copy
    monkeypatch.setenv("DSPY_CACHEDIR", str(tmp_path / "dspy-cache"))
    dspy.configure(adapter=t.lenient_adapter())
    yield
    dspy.configure(lm=None, adapter=None)


def _ask(lm) -> str:
    with dspy.context(lm=lm):
        return dspy.Predict("question -> answer")(question="What is the capital of France?").answer


def test_apply_model_reaches_the_endpoint_by_every_uri_form(smollm2_url, offline_dspy, tmp_path, monkeypatch):
    ws = tmp_path / ".mason"
    options = {"temperature": 0.0, "max_tokens": 24, "cache": False}
    host = smollm2_url.removeprefix("http://")
    lm = t.apply_model(f"openai://smollm2@{smollm2_url}", workspace=ws, **options)
    assert dspy.settings.lm is lm and _ask(lm).strip()
    assert t.apply_model(f"endpoint://{host}?model=smollm2", workspace=ws, **options).kwargs["api_base"] == smollm2_url
    monkeypatch.setenv("OPENAI_BASE", smollm2_url)
    bare = t.apply_model("smollm2", workspace=ws, **options)
    assert bare.kwargs["api_base"] == smollm2_url and _ask(bare).strip()
    assert t.active(ws)["model"]["base_url"] == smollm2_url


def _load_example():
    spec = importlib.util.spec_from_file_location("gepa_program", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gepa_example_saves_a_program_that_reloads_and_answers(smollm2_url, offline_dspy, tmp_path):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "true", "DSPY_CACHEDIR": str(tmp_path / "dspy-cache")}
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--lm", f"openai://smollm2@{smollm2_url}", "--budget", "4",
                           "--examples", "2", "--workspace", str(tmp_path / ".mason")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "answer: " in proc.stdout
    ws = tmp_path / ".mason"
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        run = tracker.get_run("latest")
    assert run["status"] == "success" and [x["task"] for x in run["tasks"]] == ["gepa"]
    assert "dspy_program" in {a["kind"] for a in run["artifacts"]}
    plan = json.loads((ws / "artifacts" / "tuning" / "_runs" / run["id"] / "plan.json").read_text())
    artefact = t.Artefact.from_dict(plan["artefacts"]["gepa"])
    assert artefact.kind == "program" and artefact.meta["teleprompter"] == "GEPA"
    assert artefact.meta["lm"] == f"openai://smollm2@{smollm2_url}"
    saved = json.loads(Path(artefact.uri).read_text())  # DSPy's own save format
    assert set(saved) >= {"demos", "signature", "metadata"} and "dspy" in saved["metadata"]["dependency_versions"]

    example = _load_example()
    program = t.load_program(artefact, dspy.Predict(example.Answer))
    assert program.signature.instructions == saved["signature"]["instructions"]
    lm = t.apply_model(artefact, workspace=ws, temperature=0.0, max_tokens=32, cache=False)
    with dspy.context(lm=lm):
        answer = program(question="What holds bricks together?").answer
    print(f"\nreloaded GEPA program answered: {answer!r}")
    assert isinstance(answer, str) and answer.strip()
