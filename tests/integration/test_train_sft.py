"""The training stage on the tiny model: SFT LoRA learns, masking is exact token by token, bad
samples are named, a 2-stage curriculum chains its weights, and a resumed run ends with the same
weights as an uninterrupted one (after an exception, and after a real kill -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.core.task import TaskContext
from mason.pipeline.config import PipelineConfig
from mason.train.config import TrainingConfig

QA = [
    ("What is a keystone?", "The keystone is the stone at the top of an arch."),
    ("What holds bricks together?", "Mortar holds them together."),
    ("How thick is a mortar joint?", "A typical joint is about 10 mm thick."),
    ("Why does a wall need a foundation?", "It spreads the weight and keeps the wall from sinking."),
]
FAST = {"batch_size": 4, "max_length": 128, "lora_r": 8, "learning_rate": 1e-2}


def chat_rows(n: int, *, task: str = "qa", n_eval: int = 0) -> list[dict]:
    rows = []
    for i in range(n + n_eval):
        q, a = QA[i % len(QA)]
        rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                     "meta": {"task": task, "split": "eval" if i >= n else "train"}})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_ctx(tmp: Path, model: Path, cfg: TrainingConfig, *, name: str = "out", resuming: bool = False,
             logged: list | None = None, callbacks: list | None = None) -> TaskContext:
    out = tmp / name
    out.mkdir(parents=True, exist_ok=True)
    return TaskContext(
        task="training", section=cfg, pipeline=PipelineConfig(base_model={"name": str(model)}),
        base_dir=tmp, out_dir=out, resuming=resuming, show_progress=False,
        log_metric=(lambda n, v, s=None: logged.append((n, v, s))) if logged is not None else (lambda *a: None),
        options={"train_callbacks": callbacks or []},
    )


def adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# --------------------------------------------------------------------------- SFT end to end


def test_sft_lora_loss_goes_down_and_adapter_changes(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(16, n_eval=4))
    cfg = TrainingConfig(data=str(data), max_steps=12, eval_steps=6, save_steps=6, **FAST)
    logged: list = []
    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, logged=logged))
    out = tmp_path / "out"

    assert result.counts["train_samples"] == 16 and result.counts["eval_samples"] == 4
    assert result.counts["steps"] == 12 and result.counts["tokens"] > 0
    m = result.metrics
    assert m["final_loss"] < m["first_loss"] - 0.3, m
    assert m["best_eval_loss"] < 10 and m["perplexity"] > 1
    # the adapter learned: lora_B starts at zero, and it is not zero any more
    tensors = adapter_tensors(out / "adapter")
    assert any("lora_B" in k and float(v.abs().max()) > 1e-4 for k, v in tensors.items())
    assert m["adapter_change"] > 0
    assert (out / "adapter" / "tokenizer.json").is_file() and not (out / "merged").exists()
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {"checkpoint-6", "checkpoint-12"}
    # live metrics reached the tracker step by step, and the history file has them
    names = {n for n, _, _ in logged}
    assert {"loss", "eval_loss", "eval_perplexity", "learning_rate", "grad_norm", "tokens_per_s", "step_time"} <= names
    assert sorted({s for n, _, s in logged if n == "loss"}) == list(range(1, 13))
    history = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in history if r["name"] == "loss"]) == 12
    assert set(history[0]) == {"stage", "step", "name", "value", "time"}
    assert json.loads((out / "train_state.json").read_text())["stages"]["main"]["status"] == "done"
    # the train report: verdicts and charts of this run
    report = json.loads((out / "train_report.json").read_text())
    assert any(v["check"] == "loss_reduction" for v in report["verdicts"])
    assert (out / "charts" / "loss.png").stat().st_size > 5000
    assert "train_report.html" in result.files and "data:image/png;base64" in (out / "train_report.html").read_text()


# --------------------------------------------------------------------------- masking


def test_assistant_only_masking_token_by_token(tiny_model_dir):
    from transformers import AutoTokenizer

    from mason.data.chat import IGNORE_INDEX, ChatRenderer, encode_chat

    from mason.data.samples import Sample

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    turns = [("system", "Be brief."), ("user", "What is a keystone?"), ("assistant", "The top stone of an arch."),
             ("user", "And mortar?"), ("assistant", "Sand, lime and water."), ("user", "Thanks!"),
             ("assistant", "You are welcome.")]
    sample = Sample({"messages": [{"role": r, "content": c} for r, c in turns]}, 7, "data.jsonl")
    enc = encode_chat(sample, ChatRenderer(tok), 512, train_on_prompt=False)

    # independent expectation: ChatML segments tokenized one by one, answers (content + <|im_end|>) trainable
    expected_ids, expected_labels = [], []
    for role, content in turns:
        head = tok(f"<|im_start|>{role}\n", add_special_tokens=False)["input_ids"]
        body = tok(f"{content}<|im_end|>", add_special_tokens=False)["input_ids"]
        tail = tok("\n", add_special_tokens=False)["input_ids"]
        expected_ids += head + body + tail
        train = role == "assistant"
        expected_labels += [IGNORE_INDEX] * len(head) + (body if train else [IGNORE_INDEX] * len(body))
        expected_labels += [IGNORE_INDEX] * len(tail)
    assert enc["input_ids"] == expected_ids
    assert enc["labels"] == expected_labels
    trained = tok.decode([t for t in enc["labels"] if t != IGNORE_INDEX])
    assert trained == "The top stone of an arch.<|im_end|>Sand, lime and water.<|im_end|>You are welcome.<|im_end|>"

    everything = encode_chat(sample, ChatRenderer(tok), 512, train_on_prompt=True)
    assert everything["labels"] == everything["input_ids"]


def test_plain_text_and_chat_mix_in_one_dataset(tmp_path, tiny_model_dir):
    """A `{"text"}` row trains on every token of the raw text (no chat template) plus EOS; a chat row
    beside it still masks its prompt."""
    from transformers import AutoTokenizer

    from mason.data.chat import IGNORE_INDEX

    from mason.data.samples import load_samples

    from mason.train.data import tokenize_sft

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = write_jsonl(tmp_path / "mixed.jsonl", [
        {"text": "The Osk Bridge was designed by Mara Velt in 1987."},
        {"messages": [{"role": "user", "content": "Who designed the Osk Bridge?"},
                      {"role": "assistant", "content": "Mara Velt."}]},
    ])
    text_row, chat_row = tokenize_sft(load_samples(data), tok, 512, train_on_prompt=False)
    raw = tok("The Osk Bridge was designed by Mara Velt in 1987.", add_special_tokens=False)["input_ids"]
    assert text_row["input_ids"] == raw + [tok.eos_token_id] and text_row["labels"] == text_row["input_ids"]
    assert "<|im_start|>" not in tok.decode(text_row["input_ids"])
    trained = tok.decode([t for t in chat_row["labels"] if t != IGNORE_INDEX])
    assert trained == "Mara Velt.<|im_end|>" and chat_row["labels"][0] == IGNORE_INDEX


def test_tool_calls_are_rendered_and_trained(tiny_model_dir):
    from transformers import AutoTokenizer

    from mason.data.chat import IGNORE_INDEX, ChatRenderer, encode_chat

    from mason.data.samples import Sample

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    call = {"id": "call_0", "type": "function", "function": {"name": "area", "arguments": "{\"w\": 2}"}}
    row = {"messages": [{"role": "user", "content": "Area?"},
                        {"role": "assistant", "content": None, "tool_calls": [call]},
                        {"role": "tool", "tool_call_id": "call_0", "content": "4"},
                        {"role": "assistant", "content": "It is 4."}]}
    enc = encode_chat(Sample(row, 1, "t.jsonl"), ChatRenderer(tok), 512, train_on_prompt=False)
    trained = tok.decode([t for t in enc["labels"] if t != IGNORE_INDEX])
    # the tiny ChatML template has no tool support: the call is folded into the assistant text, and trained on
    assert '"name": "area"' in trained and "It is 4." in trained
    assert "4<|im_end|>" not in trained.replace("It is 4.<|im_end|>", "")  # the tool's answer is not trained on


def test_no_trainable_token_error_names_the_sample(tmp_path, tiny_model_dir):
    from mason.train import stage

    long_q = "Please explain " + "the mortar and the brick " * 40 + "?"
    rows = chat_rows(4) + [{"id": "long-one", "messages": [{"role": "user", "content": long_q},
                                                           {"role": "assistant", "content": "Yes."}]}]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    cfg = TrainingConfig(data=str(data), max_steps=1, **{**FAST, "max_length": 64})
    with pytest.raises(InputError) as err:
        stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    msg = str(err.value)
    assert "data.jsonl:5" in msg and "long-one" in msg and "max_length 64" in msg
    assert "1 of 5 samples" in msg

    no_answer = write_jsonl(tmp_path / "q.jsonl", chat_rows(2) + [{"messages": [{"role": "user", "content": "Hi"}]}])
    cfg = TrainingConfig(data=str(no_answer), max_steps=1, **FAST)
    with pytest.raises(InputError, match=r"q\.jsonl:3 .*no assistant turn"):
        stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="out2"))


# --------------------------------------------------------------------------- curriculum


def test_two_stage_curriculum_starts_from_previous_weights(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(8, task="qa") + chat_rows(4, task="other"))
    extra = write_jsonl(tmp_path / "extra.jsonl", chat_rows(4))
    cfg = TrainingConfig(data=str(data), **FAST, stages=[
        {"name": "facts", "data": {"task": "qa"}, "max_steps": 6},
        # a learning rate this small leaves the weights where stage 1 left them, if it started there
        {"name": "polish", "data": str(extra), "max_steps": 2, "learning_rate": 1e-12},
    ], test_prompts=["What is a keystone?"], test_max_new_tokens=8)
    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    out = tmp_path / "out"

    first, second = adapter_tensors(out / "stages/facts/adapter"), adapter_tensors(out / "stages/polish/adapter")
    assert max(float(v.abs().max()) for k, v in first.items() if "lora_B" in k) > 1e-3  # stage 1 moved away from init
    assert max_diff(first, second) < 1e-6  # stage 2 began at stage 1's weights
    assert max_diff(second, adapter_tensors(out / "adapter")) == 0.0
    state = json.loads((out / "train_state.json").read_text())
    assert state["stages"]["polish"]["init_from"].endswith("stages/facts/adapter")
    assert result.counts == {"train_samples": 12, "eval_samples": 0, "steps": 8, "tokens": result.counts["tokens"],
                             "stages": 2}
    answers = [json.loads(ln) for ln in (out / "stages/facts/answers.jsonl").read_text().splitlines()]
    assert answers[0]["prompt"] == "What is a keystone?" and isinstance(answers[0]["answer"], str)


def test_stage_filter_matching_nothing_is_a_clear_error(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(4))
    cfg = TrainingConfig(data=str(data), **FAST, stages=[{"name": "s1", "data": {"task": "nope"}}])
    with pytest.raises(InputError, match=r"stage 's1': no sample has meta.task in \['nope'\]") as err:
        stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    assert "qa" in str(err.value)


def test_early_stopping_stops_and_keeps_the_best_checkpoint(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(8, n_eval=4))
    # no eval-loss decrease reaches a threshold of 100: the second evaluation ends training
    cfg = TrainingConfig(data=str(data), max_steps=40, eval_steps=2, early_stopping_patience=1,
                         early_stopping_threshold=100.0, **FAST)
    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    assert result.counts["steps"] == 4
    state = json.loads((tmp_path / "out/checkpoints/checkpoint-4/trainer_state.json").read_text())
    assert state["best_global_step"] == 2 and (tmp_path / "out/checkpoints/checkpoint-2").is_dir()


# --------------------------------------------------------------------------- resume


class _Interrupt(Exception):
    pass


def _stop_at(step: int):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Interrupt(f"stopped at step {step}")

    return StopAt()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(12))
    cfg = TrainingConfig(data=str(data), max_steps=8, save_steps=4, **FAST)
    stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="straight"))

    with pytest.raises(_Interrupt):
        stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="broken", callbacks=[_stop_at(6)]))
    broken = tmp_path / "broken"
    assert not (broken / "adapter").exists() and (broken / "checkpoints/checkpoint-4/mason_complete.json").is_file()
    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="broken", resuming=True))

    assert result.details["stages"][0]["resumed_from"] == "checkpoint-4"
    assert max_diff(adapter_tensors(tmp_path / "straight/adapter"), adapter_tensors(broken / "adapter")) < 1e-5
    steps = [r["step"] for r in map(json.loads, (broken / "metrics.jsonl").read_text().splitlines())
             if r["name"] == "loss"]
    assert steps == list(range(1, 9))  # steps 5-6 were logged once, not again after the resume


KILLED_RUN = """
import sys, time
from pathlib import Path
from transformers import TrainerCallback
sys.path.insert(0, {tests!r})
from integration.test_train_sft import make_ctx
from mason.train import stage
from mason.train.config import TrainingConfig

class Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.3)  # leave the parent time to kill between checkpoints

cfg = TrainingConfig.model_validate_json({cfg!r})
stage.run(make_ctx(Path({tmp!r}), Path({model!r}), cfg, name="killed", callbacks=[Slow()]))
"""


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_same_weights(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(12))
    cfg = TrainingConfig(data=str(data), max_steps=10, save_steps=2, **FAST)
    script = KILLED_RUN.format(tests=str(Path(__file__).parents[1]), cfg=cfg.model_dump_json(),
                               tmp=str(tmp_path), model=str(tiny_model_dir))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    marker = tmp_path / "killed/checkpoints/checkpoint-4/mason_complete.json"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists(), proc.stderr.read().decode()[-2000:]
    assert not (tmp_path / "killed/adapter").exists()

    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="killed", resuming=True))
    assert result.details["stages"][0]["resumed_from"].startswith("checkpoint-")
    stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, name="straight"))
    diff = max_diff(adapter_tensors(tmp_path / "straight/adapter"), adapter_tensors(tmp_path / "killed/adapter"))
    assert diff < 1e-5


# --------------------------------------------------------------------------- through the pipeline


def test_training_task_through_the_pipeline(tmp_path, tiny_model_dir, monkeypatch):
    import sqlite3

    from mason import Pipeline

    write_jsonl(tmp_path / "data.jsonl", chat_rows(8, n_eval=2))
    pipe = Pipeline.from_dict({"base_model": str(tiny_model_dir), "training": {"data": "data.jsonl", "max_steps": 4,
                               **FAST}}, base_dir=tmp_path)
    summary = pipe.run(["training"], show_progress=False)
    (outcome,) = summary.tasks
    assert outcome.status == "done" and outcome.counts["steps"] == 4
    with sqlite3.connect(tmp_path / ".mason/mason.db") as db:
        rows = db.execute("SELECT name, step FROM metrics WHERE name = 'loss' AND step IS NOT NULL").fetchall()
    assert len(rows) == 4
    again = pipe.run(["training"], show_progress=False)
    assert again.tasks[0].status == "cached"


def test_one_stage_by_name_then_the_rest(tmp_path, tiny_model_dir):
    from mason import Pipeline
    from mason.core.errors import ConfigError

    write_jsonl(tmp_path / "data.jsonl", chat_rows(8, task="qa") + chat_rows(4, task="other"))
    pipe = Pipeline.from_dict({"base_model": str(tiny_model_dir), "training": {"data": "data.jsonl", **FAST, "stages": [
        {"name": "facts", "data": {"task": "qa"}, "max_steps": 3},
        {"name": "polish", "max_steps": 2},
    ]}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="no stage named 'nope'; stages are: facts, polish"):
        pipe.run(["training:nope"], show_progress=False)

    first = pipe.run(["training:facts"], show_progress=False)
    (outcome,) = first.tasks
    assert outcome.status == "partial" and outcome.counts == {"stages": 1, "steps": 3}
    out = outcome.out_dir
    assert (out / "stages/facts/adapter").is_dir() and not (out / "stages/polish").exists()
    facts_done = (out / "stages/facts/done.json").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "partial"

    rest = pipe.run(["training"], show_progress=False)  # resumes: facts is kept, polish runs
    assert rest.tasks[0].status == "done" and rest.tasks[0].counts["steps"] == 5
    assert (out / "stages/facts/done.json").read_text() == facts_done
    assert json.loads((out / "train_state.json").read_text())["stages"]["polish"]["init_from"].endswith("facts/adapter")
    assert pipe.run(["training:facts"], show_progress=False).tasks[0].status == "cached"


def test_out_of_memory_is_one_clear_error():
    from mason.core.errors import MasonError
    from mason.train.stage import _train

    class Trainer:
        def train(self, resume_from_checkpoint=None):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(MasonError, match="training ran out of memory: CUDA out of memory") as err:
        _train(Trainer(), None)
    assert "batch_size" in err.value.hint and "gradient_checkpointing" in err.value.hint


def test_trainer_args_pass_through_and_unknown_names_fail(tmp_path):
    from mason.core.errors import ConfigError
    from mason.train.sft import trainer_kwargs

    cfg = TrainingConfig(trainer_args={"optim": "adafactor", "ddp_find_unused_parameters": False})
    kwargs = trainer_kwargs(cfg, tmp_path, has_eval=False, n_rows=8)
    assert kwargs["optim"] == "adafactor" and kwargs["ddp_find_unused_parameters"] is False
    with pytest.raises(ConfigError, match=r"training.trainer_args.optimiser: not a transformers TrainingArguments"):
        trainer_kwargs(TrainingConfig(trainer_args={"optimiser": "x"}), tmp_path, has_eval=False, n_rows=8)


# --------------------------------------------------------------------------- knowledge probe


def probe_rows(n_train: int, n_probe: int) -> list[dict]:
    rows = chat_rows(n_train, n_eval=n_probe)
    for r in rows[n_train:]:
        r["meta"].update(probe=True, answers=["keystone"])
    return rows


def test_knowledge_probe_picks_the_checkpoint_and_stops_early(tmp_path, tiny_model_dir, monkeypatch):
    """The probe's score (scripted here; its scoring is tested on its own) picks the checkpoint:
    best at step 4, two evaluations without improvement stop the run at step 8, and the saved
    adapter is step 4's."""
    from mason.train import probe, stage

    scripted = iter([0.25, 0.75, 0.5, 0.5, 0.5])
    asked: list[int] = []

    def fake_score(model, tokenizer, questions, max_new_tokens):
        asked.append(len(questions))
        return next(scripted)

    monkeypatch.setattr(probe, "score", fake_score)
    data = write_jsonl(tmp_path / "data.jsonl", probe_rows(8, 3))
    cfg = TrainingConfig(data=str(data), max_steps=40, eval_steps=2, early_stopping_patience=2, save_total_limit=1,
                         **FAST)
    result = stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    out = tmp_path / "out"
    assert result.counts["steps"] == 8 and asked == [3, 3, 3, 3]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-4"]  # the limit of 1 keeps the best
    state = json.loads((out / "checkpoints/checkpoint-4/trainer_state.json").read_text())
    assert state["best_global_step"] == 4 and state["best_metric"] == 0.75
    assert max_diff(adapter_tensors(out / "adapter"), adapter_tensors(out / "checkpoints/checkpoint-4")) == 0.0
    assert result.metrics["best_knowledge"] == 0.75
    report = json.loads((out / "train_report.json").read_text())
    assert report["best"]["knowledge"] == {"value": 0.75, "step": 4}
    assert report["verdicts"][1]["text"].startswith("Knowledge probe: best 75%")


def test_knowledge_probe_scores_real_answers(tmp_path, tiny_model_dir):
    """Unscripted: the tiny model answers the probe questions and the score is logged at each evaluation."""
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", probe_rows(8, 2))
    cfg = TrainingConfig(data=str(data), max_steps=4, eval_steps="epoch", probe_max_new_tokens=8, **FAST)
    logged: list = []
    stage.run(make_ctx(tmp_path, tiny_model_dir, cfg, logged=logged))
    values = [v for n, v, _ in logged if n == "eval_knowledge"]
    assert values and all(v in (0.0, 0.5, 1.0) for v in values)


def test_select_by_eval_loss_ignores_probe_questions(tmp_path, tiny_model_dir, monkeypatch):
    from mason.train import probe, stage

    monkeypatch.setattr(probe, "score", lambda *a: pytest.fail("the probe must not run"))
    data = write_jsonl(tmp_path / "data.jsonl", probe_rows(8, 2))
    cfg = TrainingConfig(data=str(data), max_steps=2, eval_steps=2, select_by="eval_loss", **FAST)
    assert "best_knowledge" not in stage.run(make_ctx(tmp_path, tiny_model_dir, cfg)).metrics


def test_select_by_knowledge_without_probe_questions_says_how_to_get_them(tmp_path, tiny_model_dir):
    from mason.core.errors import MasonError
    from mason.train import stage

    data = write_jsonl(tmp_path / "data.jsonl", chat_rows(8, n_eval=2))  # eval rows, none a probe question
    cfg = TrainingConfig(data=str(data), max_steps=2, eval_steps=2, select_by="knowledge", **FAST)
    with pytest.raises(MasonError, match="no eval sample is a probe question") as err:
        stage.run(make_ctx(tmp_path, tiny_model_dir, cfg))
    assert "probe_questions" in err.value.hint
    assert not (tmp_path / "out" / "adapter").exists()  # nothing half-written
