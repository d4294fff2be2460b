"""Weights from traces: the SFT example (traces -> to_sft -> TRL_SFT LoRA on the tiny model ->
apply_lora) run as a program, cached on a re-run, tracked with lineage back to trace ids; DPO pairs
from scored traces; the GGUF LoRA file llama.cpp computes the same logits with as PEFT, served by
llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import mason
from mason.pipeline.tracker import Tracker
from tests.helpers.llama_server import LlamaServer

pytestmark = pytest.mark.slow
t = mason.tuning
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tune_from_traces.py"
TRACES = ROOT / "examples" / "data" / "support-traces.jsonl"
HELPFUL = ["t-101", "t-103", "t-104", "t-105", "t-107", "t-108", "t-109"]  # helpfulness >= 0.5


def _run_example(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLE), "--model", "tiny", "--steps", "6", "--gguf",
                           "--workspace", str(tmp_path / ".mason")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)


def test_the_sft_example_tunes_a_lora_from_traces_and_applies_it(tmp_path):
    proc = _run_example(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ws = tmp_path / ".mason"
    active = t.active(ws)["adapter"]
    adapter = Path(active["path"])
    assert (adapter / "adapter_config.json").is_file() and Path(active["gguf"]).is_file()
    assert (ws / "ollama" / "support-sft" / "Modelfile").read_text().splitlines()[1:] == [
        f"FROM {ws.resolve() / 'tiny-model'}", f"ADAPTER {active['gguf']}"]
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        run = tracker.get_run("latest")
    assert run["status"] == "success" and run["name"] == "support-sft"
    tasks = {x["task"]: x for x in run["tasks"]}
    assert [tasks[n]["status"] for n in ("sft", "training", "guard:loss_drop")] == ["done", "done", "done"]
    assert tasks["training"]["counts"]["train_samples"] == 7 and tasks["training"]["counts"]["steps"] == 6
    assert {a["kind"] for a in run["artifacts"]} >= {"adapter", "active_adapter", "active", "html"}
    # each training sample leads back to the trace it came from
    assert t.lineage(tasks["training"]["key"], workspace=ws) == HELPFUL
    samples = [json.loads(x) for x in (Path(tasks["sft"]["artifact_dir"]) / "lineage.jsonl").read_text().splitlines()]
    assert sorted(s["traces"][0] for s in samples) == HELPFUL

    again = _run_example(tmp_path)  # same traces, same options: the training task is cached
    assert again.returncode == 0, again.stderr[-3000:]
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        rerun = tracker.get_run("latest")
    assert {x["task"]: x["status"] for x in rerun["tasks"]} == {"sft": "cached", "guard:loss_drop": "done"}
    listing = subprocess.run([sys.executable, "-m", "mason", "runs", "list", "-w", str(ws), "--json"],
                             capture_output=True, text=True, check=True).stdout
    assert [r["name"] for r in json.loads(listing)][:2] == ["support-sft", "support-sft"]


def test_dpo_on_preference_pairs_from_scored_traces(tmp_path, tiny_model_dir):
    phase = t.Phase("dpo", source=f"dataset://jsonl/{TRACES}", curate=lambda r: t.to_preferences(r, score="helpfulness"),
                    optimize=t.TRL_DPO(str(tiny_model_dir), max_steps=2, batch_size=2, lora_r=4, lora_alpha=8),
                    apply=t.apply_lora)
    result = t.run(t.Plan([phase]), base_dir=tmp_path)
    artefact = result.by_phase["dpo"]
    assert artefact.kind == "adapter" and artefact.meta["type"] == "dpo"
    data = next((tmp_path / ".mason" / "artifacts" / "tuning" / "dpo").glob("*/data.jsonl"))
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    assert [(r["meta"]["source"]["chosen_trace"], r["meta"]["source"]["rejected_trace"]) for r in rows] == [
        ("t-101", "t-102"), ("t-104", "t-106")]
    assert artefact.meta["counts"]["train_samples"] == 2
    assert t.lineage(artefact.meta["training_key"], workspace=tmp_path / ".mason") == ["t-101", "t-102", "t-104", "t-106"]


def test_the_gguf_lora_gives_llama_cpp_the_peft_logits_and_the_server_serves_it(tmp_path, tiny_model_dir):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    llama_cpp = pytest.importorskip("llama_cpp")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mason.export.gguf import write_gguf
    from mason.tuning.gguf_lora import write_lora_gguf

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                  init_lora_weights=False))  # random B: a visible effect
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    ids = [1, 17, 42, 99, 250, 7]
    with torch.no_grad():
        tuned = peft_model(torch.tensor([ids])).logits[0].numpy()
        with peft_model.disable_adapter():
            base = peft_model(torch.tensor([ids])).logits[0].numpy()
    write_gguf(tiny_model_dir, tmp_path / "tiny.gguf", "f32", "tiny")
    info = write_lora_gguf(adapter, tiny_model_dir, tmp_path / "adapter.gguf")
    assert info["architecture"] == "llama" and info["alpha"] == 8.0 and info["rank"] == 4

    def llama_logits(lora: Path | None):
        kwargs = {"lora_path": str(lora)} if lora else {}
        llm = llama_cpp.Llama(model_path=str(tmp_path / "tiny.gguf"), logits_all=True, verbose=False, n_ctx=64,
                              **kwargs)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    effect = np.abs(tuned - base).max()
    assert effect > 0.1
    assert np.abs(llama_logits(None) - base).max() < 0.01
    assert np.abs(llama_logits(tmp_path / "adapter.gguf") - tuned).max() < 0.01 * max(1.0, effect)

    with LlamaServer(tmp_path / "tiny.gguf", tmp_path / "server.log", lora=tmp_path / "adapter.gguf") as url:
        body = json.dumps({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}).encode()
        request = urllib.request.Request(f"{url}/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as r:
            reply = json.loads(r.read())
    assert reply["choices"][0]["message"]["role"] == "assistant" and reply["usage"]["completion_tokens"] >= 1
