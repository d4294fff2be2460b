"""The transformers runtime on the tiny model: merged folders and PEFT adapters, streaming, batching.

The random tiny model only ever answers whitespace, so `taught_model` first teaches it four short
exchanges (a few seconds of full fine-tuning): its greedy answers are then real text that ends
with `<|im_end|>`, which makes stop tokens, counts and batching checkable.

Batching policy: on CPU in fp32 a left-padded batch gives exactly the same greedy tokens as one
prompt alone (the padded positions are masked out and the kernels are the same), so the test
compares texts and counts exactly. On GPUs in bf16, padding changes the reduction shapes and a
near-tie can flip a token; the tests pin device="cpu" and dtype="float32" for that reason.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from mason.core.errors import InputError, ModelNotFoundError
from mason.runtime import GenerationParams, detect_format, open_runtime
from tests.helpers.models import CHATS, make_adapter, teach_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
# peft's get_peft_model (making the test adapters) calls a transformers API deprecated for v6
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

GREEDY = GenerationParams(max_tokens=40, temperature=0.0, repetition_penalty=1.0)
CPU = {"device": "cpu", "dtype": "float32"}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def taught_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return teach_model(tiny_model_dir, tmp_path_factory.mktemp("taught") / "model")


@pytest.fixture(scope="module")
def merged(taught_model: Path):
    return open_runtime(taught_model, **CPU)


def test_merged_greedy_answers_are_deterministic_and_stop_at_end_of_turn(merged, taught_model: Path) -> None:
    assert detect_format(taught_model) == "merged"
    assert merged.describe() == {"format": "merged", "backend": "transformers", "path": str(taught_model),
                                 "device": "cpu", "dtype": "float32"}
    a = merged.generate(user("What is a keystone?"), GREEDY)
    b = merged.generate(user("What is a keystone?"), GREEDY)
    assert a.text == b.text == "The stone at the top of an arch."
    assert 0 < a.output_tokens < GREEDY.max_tokens  # it stopped at <|im_end|>, not at the limit


def test_usage_counts_match_a_direct_generate(merged, taught_model: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(taught_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(taught_model)
    prompt = tok.apply_chat_template(user("hi"), tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=0)[0, ids.shape[1]:].tolist()
    assert out[-1] == tok.eos_token_id  # the direct run stops at <|im_end|> too
    result = merged.generate(user("hi"), GREEDY)
    assert (result.prompt_tokens, result.output_tokens) == (ids.shape[1], len(out) - 1)  # stop token not counted
    assert merged.last_usage == (result.prompt_tokens, result.output_tokens)
    assert result.text == tok.decode(out, skip_special_tokens=True).strip()


def test_stream_yields_pieces_that_join_to_the_answer(merged) -> None:
    pieces = list(merged.stream(user("What holds bricks together?"), GREEDY))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == "Mortar holds them together."
    assert merged.last_usage[1] > 1


def test_closing_a_stream_early_stops_generation(merged) -> None:
    long = GenerationParams(max_tokens=2000, temperature=1.0, repetition_penalty=1.0)
    it = merged.stream(user("x " * 50), long)
    next(it)
    start = time.perf_counter()
    it.close()  # sets the stop flag and joins the generation thread
    assert time.perf_counter() - start < 5
    assert not [t for t in threading.enumerate() if t.name == "mason-generate"]


def test_batch_with_left_padding_matches_one_by_one(merged) -> None:
    prompts = [q for q, _ in CHATS] + ["tell me about walls and arches please, in detail", "tell me about walls"]
    conversations = [user(q) for q in prompts]
    conversations[1] = [{"role": "system", "content": "You know masonry."}, *conversations[1]]
    single = [merged.generate(c, GREEDY) for c in conversations]
    batch = merged.generate_batch(conversations, GREEDY)
    assert len({r.prompt_tokens for r in single}) > 2  # prompts of different lengths: rows are padded
    assert [r.extra["batch_size"] for r in batch] == [len(prompts)] * len(prompts)
    assert [(r.text, r.prompt_tokens, r.output_tokens) for r in batch] == \
           [(r.text, r.prompt_tokens, r.output_tokens) for r in single]
    assert (batch[0].text, batch[2].text, batch[3].text) == (CHATS[0][1], CHATS[2][1], CHATS[3][1])
    assert len({r.seconds for r in batch}) == 1 and batch[0].first_token_seconds is None
    merged.batch_size = 2  # several batches: results still in input order
    try:
        assert [r.text for r in merged.generate_batch(conversations, GREEDY)] == [r.text for r in single]
    finally:
        merged.batch_size = 8


def test_sampling_is_reproducible_with_a_seed(merged) -> None:
    p = GenerationParams(max_tokens=20, temperature=1.5, top_p=0.95, repetition_penalty=1.1, seed=7)
    texts = {merged.generate(user("hi"), p).text for _ in range(2)}
    assert len(texts) == 1
    others = {merged.generate(user("hi"), GenerationParams(**{**p.as_dict(), "seed": s})).text for s in range(8, 12)}
    assert len(others | texts) > 1  # the seed matters


def test_adapter_matches_its_merged_model(taught_model: Path, tmp_path: Path) -> None:
    adapter_dir = make_adapter(taught_model, tmp_path / "adapter", with_tokenizer=True)
    assert detect_format(adapter_dir) == "adapter"
    rt = open_runtime(adapter_dir, **CPU)
    assert rt.describe()["base_model"] == str(taught_model)
    # the reference: the same adapter merged into the base with peft, as a plain model folder
    base = transformers.AutoModelForCausalLM.from_pretrained(taught_model)
    merged_model = peft.PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged_model.save_pretrained(tmp_path / "merged")
    transformers.AutoTokenizer.from_pretrained(taught_model).save_pretrained(tmp_path / "merged")
    ref = open_runtime(tmp_path / "merged", **CPU)
    taught = open_runtime(taught_model, **CPU)
    conversations = [user(q) for q, _ in CHATS]
    answers = [rt.generate(c, GREEDY).text for c in conversations]
    assert answers == [ref.generate(c, GREEDY).text for c in conversations]
    assert answers != [taught.generate(c, GREEDY).text for c in conversations]  # the adapter is applied
    assert [r.text for r in rt.generate_batch(conversations, GREEDY)] == answers


def test_adapter_without_tokenizer_and_with_a_moved_base(taught_model: Path, tmp_path: Path) -> None:
    base_copy = Path(shutil.copytree(taught_model, tmp_path / "base"))
    adapter_dir = make_adapter(base_copy, tmp_path / "adapter", with_tokenizer=False)
    expected = open_runtime(adapter_dir, **CPU).generate(user("hi"), GREEDY).text  # tokenizer from the base
    shutil.rmtree(base_copy)  # the base named in adapter_config.json is gone
    with pytest.raises(ModelNotFoundError, match="adapter's base model.*not found") as exc:
        open_runtime(adapter_dir, **CPU)
    assert "--base" in (exc.value.hint or "")
    rt = open_runtime(adapter_dir, base_model=str(taught_model), **CPU)  # --base: the same weights elsewhere
    assert rt.generate(user("hi"), GREEDY).text == expected


def test_adapter_base_names_go_through_the_resolver(taught_model: Path, tmp_path: Path, monkeypatch) -> None:
    adapter_dir = make_adapter(taught_model, tmp_path / "adapter", with_tokenizer=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        open_runtime(adapter_dir, base_model="someone/not-here", **CPU)
    with pytest.raises(ModelNotFoundError):
        open_runtime(adapter_dir, base_model="no such model at all", **CPU)


def test_bad_inputs(taught_model: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_runtime(tmp_path / "missing")
    with pytest.raises(InputError, match="dtype"):
        open_runtime(taught_model, device="cpu", dtype="float8")
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    with pytest.raises(InputError, match="names no base model"):
        open_runtime(broken)
