"""The llama.cpp runtime on a GGUF exported from the tiny model: streaming, token counts, and
the same greedy answer as PyTorch (the GGUF's embedded chat template renders the prompt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mason.export.base import ExportJob
from mason.export.gguf import GGUFExporter
from mason.export.verify import render_ids
from mason.runtime import GenerationParams, open_runtime

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What holds bricks together?"}]


@pytest.fixture(scope="module")
def gguf_file(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # f32: the greedy answer must match PyTorch token for token
    out = tmp_path_factory.mktemp("runtime")
    return GGUFExporter().export(ExportJob(tiny_model_dir, out, {"quantization": "f32"})).path


@pytest.fixture(scope="module")
def runtime(gguf_file: Path):
    rt = open_runtime(gguf_file, n_ctx=512, n_threads=2)
    yield rt
    rt.close()


def test_open_runtime_picks_llama_cpp(runtime, gguf_file: Path) -> None:
    from mason.runtime.llamacpp import LlamaCppRuntime

    assert isinstance(runtime, LlamaCppRuntime)
    info = runtime.describe()
    assert info["format"] == "gguf" and info["backend"] == "llama.cpp" and info["n_ctx"] == 512
    assert info["path"] == str(gguf_file)


def test_streams_pieces_and_counts_tokens(runtime, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    pieces = list(runtime.stream(MESSAGES, GenerationParams(max_tokens=12)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    prompt_tokens, output_tokens = runtime.last_usage
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert prompt_tokens == len(render_ids(tok, MESSAGES))
    assert 0 < output_tokens <= 12
    again = runtime.generate(MESSAGES, GenerationParams(max_tokens=12))
    assert again.text == "".join(pieces).strip() and again.output_tokens == output_tokens  # greedy: deterministic
    assert again.tokens_per_second > 0


def test_greedy_answer_matches_pytorch(runtime, tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([render_ids(tok, MESSAGES)])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    expected = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    answer = runtime.generate(MESSAGES, GenerationParams(max_tokens=10))
    assert answer.text == expected


def test_sampling_settings_are_passed(runtime) -> None:
    params = GenerationParams(max_tokens=8, temperature=0.9, top_p=0.9, repetition_penalty=1.1, seed=7)
    first = runtime.generate(MESSAGES, params)
    second = runtime.generate(MESSAGES, params)
    assert first.text == second.text  # same seed, same sample
    assert 0 < first.output_tokens <= 8
