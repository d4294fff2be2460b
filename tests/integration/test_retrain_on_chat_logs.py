"""The retrain-on-chat-logs loop on the tiny model: chat (a scripted model), log the conversation,
retrain on the log plus an older data file (`training.data` as a list with a glob), and the new
adapter answers the logged question; the train report counts the log rows and the collapsed ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mason.chat import ChatLogger, ChatSession
from mason.core.task import TaskContext
from mason.pipeline.config import PipelineConfig
from mason.runtime.base import GenerationParams, Runtime
from mason.train.config import TrainingConfig

pytest.importorskip("torch")
pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

# what the person taught in the chat: the scripted model gives the answers they wanted
EXCHANGES = [
    ("Which stone sits at the top of an arch?", "The keystone sits at the top of the arch."),
    ("What holds the bricks of a wall together?", "Mortar holds the bricks together."),
]
OLD = [("How thick is a typical mortar joint?", "A typical mortar joint is ten millimetres thick.")]


class ScriptedRuntime(Runtime):
    """Answers from a list, in a few pieces, like a streaming model."""

    format, backend = "merged", "scripted"

    def __init__(self, answers: list[str]):
        super().__init__()
        self.answers = list(answers)

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        answer = self.answers.pop(0)
        yield from (answer[i:i + 5] for i in range(0, len(answer), 5))
        self.last_usage = (len(messages), len(answer) // 5 + 1)


@pytest.mark.slow
def test_retrain_on_a_chat_log_and_older_data(tmp_path: Path, tiny_model_dir: Path) -> None:
    from mason.runtime.base import open_runtime
    from mason.train import stage

    log = tmp_path / "logs" / "chats.jsonl"
    with ChatLogger(log) as logger:
        session = ChatSession(ScriptedRuntime([a for _, a in EXCHANGES]), GenerationParams(), logger=logger,
                              model="out/merged")
        for question, _ in EXCHANGES:
            assert "".join(session.reply(question))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [len(r["messages"]) for r in rows] == [2, 4]  # the second row repeats the first exchange
    (tmp_path / "old.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in OLD))

    # few steps at a high constant rate: the tiny model learns the three answers by heart
    cfg = TrainingConfig(data=["old.jsonl", "logs/*.jsonl"], max_steps=40, learning_rate=1e-2,
                         lr_scheduler="constant", lora_r=8, bf16=False, batch_size=4, max_length=128)
    out = tmp_path / "out"
    out.mkdir()
    ctx = TaskContext(task="training", section=cfg, pipeline=PipelineConfig(base_model={"name": str(tiny_model_dir)}),
                      base_dir=tmp_path, out_dir=out, show_progress=False)
    result = stage.run(ctx)
    assert result.counts["train_samples"] == 2  # the old row + the whole conversation (its prefix row collapsed)
    summary = json.loads((out / "train_report.json").read_text())["summary"]
    assert summary["data"]["rows_from_chat_logs"] == 1 and summary["data"]["collapsed_log_rows"] == 1
    assert summary["data"]["files"] == 2 and summary["data"]["quality"]["clean_share"] == 1.0

    runtime = open_runtime(out / "adapter", format="adapter", device="cpu", dtype="float32")
    try:
        params = GenerationParams(max_tokens=24, temperature=0.0, repetition_penalty=1.0)
        for question, answer in [EXCHANGES[0], OLD[0]]:
            got = runtime.generate([{"role": "user", "content": question}], params).text.strip()
            assert got == answer, (question, got)
    finally:
        runtime.close()
