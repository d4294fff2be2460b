"""Training data of your own: lists of files and globs, conversation logs collapsed, a seeded
held-out share, the quality gate, and what the stage and the eval set make of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mason.chat import chat_row
from mason.core.errors import InputError
from mason.core.task import TaskContext
from mason.data.gate import STOP_BELOW, WARN_BELOW, quality_gate
from mason.data.samples import (
    Sample,
    collapse_prefixes,
    dataset_paths,
    hold_out,
    load_samples,
    load_training_data,
    split,
)
from mason.pipeline.config import PipelineConfig
from mason.train.config import TrainingConfig

SYSTEM = {"role": "system", "content": "You answer questions about masonry."}
TURNS = [
    ("What holds the bricks of a wall together?", "Mortar, a mix of sand, cement and water, holds them together."),
    ("And how thick is a typical mortar joint?", "A typical joint is about ten millimetres thick."),
    ("Which stone sits at the top of an arch?", "The keystone sits at the top and locks the arch in place."),
]


def qa(i: int, **meta) -> dict:
    return {"messages": [{"role": "user", "content": f"Question number {i} about brick walls?"},
                         {"role": "assistant", "content": f"The answer number {i} is about brick walls."}],
            "meta": meta}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def session_rows(turns: list[tuple[str, str]], system: bool = True) -> list[dict]:
    """What `mason chat --log` writes for one session: a row per exchange, each the whole conversation."""
    messages, rows = [SYSTEM] if system else [], []
    for q, a in turns:
        messages = [*messages, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        rows.append(chat_row(messages, model="out/merged"))
    return rows


# --------------------------------------------------------------------------- files and globs


def test_data_is_a_file_or_a_list_of_files_and_globs(tmp_path: Path) -> None:
    old = write_jsonl(tmp_path / "data" / "old.jsonl", [qa(1)])
    b = write_jsonl(tmp_path / "logs" / "b.jsonl", [qa(2)])
    a = write_jsonl(tmp_path / "logs" / "a.jsonl", [qa(3)])
    (tmp_path / "logs" / "notes.txt").write_text("not matched")
    assert dataset_paths("data/old.jsonl", tmp_path, {}) == [old]
    assert dataset_paths(["data/old.jsonl", "logs/*.jsonl"], tmp_path, {}) == [old, a, b]  # globs in name order
    assert dataset_paths(["logs/*.jsonl", "logs/a.jsonl"], tmp_path, {}) == [a, b]  # each file once
    assert dataset_paths([str(tmp_path / "**" / "*.jsonl")], tmp_path, {}) == [old, a, b]  # absolute, recursive
    loaded = load_training_data(["data/old.jsonl", "logs/*.jsonl"], tmp_path, {})
    assert [s.source for s in loaded.samples] == [str(old), str(a), str(b)] and loaded.paths == [old, a, b]


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", [qa(1)])
    (tmp_path / "logs").mkdir()
    with pytest.raises(InputError) as e:
        dataset_paths(["data.jsonl", "logs/chat-*.jsonl"], tmp_path, {})
    assert "`logs/chat-*.jsonl` matches no file" in e.value.message and str(tmp_path / "logs") in e.value.message
    with pytest.raises(InputError, match="there is no folder"):
        dataset_paths(["nowhere/*.jsonl"], tmp_path, {})
    with pytest.raises(InputError, match="no such file"):  # a plain missing file: the reader's own message
        load_training_data(["data.jsonl", "missing.jsonl"], tmp_path, {})


def test_without_data_the_upstream_samples_are_read(tmp_path: Path) -> None:
    gen = write_jsonl(tmp_path / "gen" / "samples.jsonl", [qa(1, split="train")]).parent
    assert dataset_paths(None, tmp_path, {"generate": gen}) == [gen / "samples.jsonl"]
    with pytest.raises(InputError, match="no dataset"):
        dataset_paths(None, tmp_path, {})


def test_config_accepts_a_string_or_a_non_empty_list() -> None:
    assert TrainingConfig(data="a.jsonl").data == "a.jsonl"
    assert TrainingConfig(data=["a.jsonl", "logs/*.jsonl"]).data == ["a.jsonl", "logs/*.jsonl"]
    with pytest.raises(ValueError, match="empty list"):
        TrainingConfig(data=[])
    with pytest.raises(ValueError, match="train_eval_split"):
        TrainingConfig(train_eval_split=1.0)
    assert TrainingConfig().train_eval_split is None and TrainingConfig().allow_low_quality is False


# --------------------------------------------------------------------------- conversation logs


def test_chat_log_sessions_collapse_to_their_longest_rows(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "chats.jsonl", session_rows(TURNS) + session_rows(TURNS[:1], system=False))
    old = write_jsonl(tmp_path / "old.jsonl", [qa(1), qa(2)])
    loaded = load_training_data(["old.jsonl", "chats.jsonl"], tmp_path, {})
    # session 1 logged 3 rows (1, 2, 3 exchanges): only the 3-exchange row stays; session 2 (no system
    # prompt) is not a prefix of session 1, so its one row stays
    assert loaded.collapsed == 2 and len(loaded.samples) == 4
    assert [len(s.row["messages"]) for s in loaded.samples] == [2, 2, 7, 2]
    assert loaded.from_chat_logs == 2
    assert loaded.summary() == {"files": 2, "rows_from_chat_logs": 2, "collapsed_log_rows": 2}
    assert load_training_data(str(old), tmp_path, {}).summary() == {"files": 1}  # nothing to say for plain data
    assert len(load_samples(log)) == 4  # the file itself is untouched


def test_collapse_keeps_exact_duplicates_preference_rows_and_other_splits() -> None:
    conv = [{"role": "user", "content": "Question about walls?"}, {"role": "assistant", "content": "An answer."}]
    longer = [*conv, {"role": "user", "content": "And then?"}, {"role": "assistant", "content": "More."}]
    pref = {"messages": conv[:1], "chosen": {"role": "assistant", "content": "Yes."},
            "rejected": {"role": "assistant", "content": "No."}}
    rows = [{"messages": conv}, {"messages": conv}, pref, {"messages": conv, "meta": {"split": "eval"}},
            {"messages": longer}]
    kept, n = collapse_prefixes([Sample(r, i + 1, "f") for i, r in enumerate(rows)])
    # both copies of `conv` (train split) begin `longer`; the eval copy and the preference row stay
    assert n == 2 and [s.line for s in kept] == [3, 4, 5]
    kept, n = collapse_prefixes([Sample({"messages": conv}, 1, "f"), Sample({"messages": conv}, 2, "f")])
    assert n == 0 and len(kept) == 2  # equal rows are not prefixes of each other


# --------------------------------------------------------------------------- held-out share


def test_train_eval_split_holds_out_a_seeded_share_of_files_without_splits(tmp_path: Path) -> None:
    mine = write_jsonl(tmp_path / "mine.jsonl", [qa(i) for i in range(20)])
    marked = write_jsonl(tmp_path / "marked.jsonl", [qa(100 + i, split="train") for i in range(10)])
    loaded = load_training_data([mine.name, marked.name], tmp_path, {}, eval_split=0.1, seed=3)
    train, evals = split(loaded.samples)
    assert loaded.held_out == 2 and len(evals) == 2 and len(train) == 28
    assert all(s.source == str(mine) for s in evals)  # a file that marks its split keeps it
    again = load_training_data([mine.name, marked.name], tmp_path, {}, eval_split=0.1, seed=3)
    held = {s.row["id"] for s in evals}
    assert held == {s.row["id"] for s in split(again.samples)[1]}  # the same rows every run
    # ... whatever the order of the file, and another seed picks other rows
    write_jsonl(tmp_path / "shuffled.jsonl", [qa(i) for i in reversed(range(20))])
    assert {s.row["id"] for s in split(load_training_data("shuffled.jsonl", tmp_path, {}, eval_split=0.1,
                                                          seed=3).samples)[1]} == held
    others = [{s.row["id"] for s in split(load_training_data("mine.jsonl", tmp_path, {}, eval_split=0.1,
                                                             seed=seed).samples)[1]} for seed in range(4, 8)]
    assert any(o != held for o in others)
    assert load_training_data("mine.jsonl", tmp_path, {}, eval_split=0.1).summary()["held_out_for_eval"] == 2
    # the loaded rows are marked, the file is not
    assert all((s.row.get("meta") or {}).get("split") is None for s in load_samples(mine))


def test_hold_out_edges() -> None:
    rows = [Sample(qa(i), i + 1, "f") for i in range(3)]
    assert hold_out(rows, None) == (rows, 0) and hold_out(rows, 0.0) == (rows, 0)
    out, n = hold_out(rows, 0.01)
    assert n == 1 and sum(s.row["meta"].get("split") == "eval" for s in out) == 1  # at least one row
    out, n = hold_out(rows, 0.99)
    assert n == 2  # never every row
    assert hold_out(rows[:1], 0.5)[1] == 0  # one row: it trains


# --------------------------------------------------------------------------- the quality gate


def mixed(tmp: Path, name: str, clean: int, bad: int) -> Path:
    bad_rows = [{"messages": [{"role": "user", "content": f"Why is wall number {i} leaning?"},
                              {"role": "assistant", "content": "Dunno."}]} for i in range(bad)]
    return write_jsonl(tmp / name, [qa(i) for i in range(clean)] + bad_rows[:bad - 1]
                       + ([{"messages": [{"role": "user", "content": "Nothing answers this question?"}]}] if bad else []))


def test_gate_levels(tmp_path: Path) -> None:
    assert WARN_BELOW == 0.7 and STOP_BELOW == 0.5
    ok = quality_gate([mixed(tmp_path, "ok.jsonl", 8, 2)])
    assert ok.level == "ok" and ok.quality == 0.8
    warn = quality_gate([mixed(tmp_path, "warn.jsonl", 6, 4)])
    assert warn.level == "warn" and warn.summary() == {"rows": 10, "clean_rows": 6, "clean_share": 0.6}
    low = mixed(tmp_path, "low.jsonl", 4, 6)
    with pytest.raises(InputError) as e:
        quality_gate([low])
    message, hint = e.value.message, e.value.hint
    assert "40% clean" in message and "6 of 10 training rows" in message
    assert "too_short (5)" in message and "no assistant turn: nothing to learn (1)" not in message
    assert "no assistant turn (1)" in message and f"{low} (4/10 clean)" in message
    assert "mason validate FILE --filter" in hint and "training.allow_low_quality: true" in hint
    assert quality_gate([low], allow_low_quality=True).level == "low"
    # the share is over every file together
    both = quality_gate([low, mixed(tmp_path, "good.jsonl", 10, 0)])
    assert both.level == "ok" and both.rows == 20 and both.clean == 14


def stage_ctx(tmp: Path, cfg: TrainingConfig) -> TaskContext:
    return TaskContext(task="training", section=cfg, pipeline=PipelineConfig(base_model={"name": "unused"}),
                       base_dir=tmp, out_dir=tmp / "out", show_progress=False)


def test_stage_gates_your_own_files_before_training(tmp_path: Path, capsys) -> None:
    from mason.train.stage import check_data_quality

    mixed(tmp_path, "warn.jsonl", 6, 4)
    mixed(tmp_path, "low.jsonl", 1, 9)
    assert check_data_quality(stage_ctx(tmp_path, TrainingConfig()), TrainingConfig()) is None  # generated data
    cfg = TrainingConfig(data=["warn.jsonl"])
    assert check_data_quality(stage_ctx(tmp_path, cfg), cfg) == {"rows": 10, "clean_rows": 6, "clean_share": 0.6}
    err = capsys.readouterr().err
    assert "60% clean (under 70%)" in err and "warn.jsonl (6/10 clean)" in err and "--filter" in err
    cfg = TrainingConfig(data=["warn.jsonl", "low.jsonl"])
    with pytest.raises(InputError, match="35% clean"):
        check_data_quality(stage_ctx(tmp_path, cfg), cfg)
    cfg = TrainingConfig(data="low.jsonl", allow_low_quality=True)
    assert check_data_quality(stage_ctx(tmp_path, cfg), cfg)["clean_rows"] == 1
    assert "training anyway" in capsys.readouterr().err
    # curriculum stages' own files are your data too
    cfg = TrainingConfig(stages=[{"name": "a", "data": "low.jsonl"}])
    with pytest.raises(InputError, match="10% clean"):
        check_data_quality(stage_ctx(tmp_path, cfg), cfg)


def test_stage_data_collapses_logs_and_holds_out(tmp_path: Path) -> None:
    from mason.train.stage import stage_data

    write_jsonl(tmp_path / "old.jsonl", [qa(i) for i in range(10)])
    write_jsonl(tmp_path / "logs" / "chats.jsonl", session_rows(TURNS))
    cfg = TrainingConfig(data=["old.jsonl", "logs/*.jsonl"], train_eval_split=0.2)
    loaded = stage_data(stage_ctx(tmp_path, cfg), cfg, cfg.stage_list()[0])
    assert loaded.collapsed == 2 and loaded.from_chat_logs == 1 and loaded.held_out == 2
    assert len(split(loaded.samples)[1]) == 2  # 20% of old.jsonl; the log's one row trains


def test_fingerprint_follows_the_files_a_glob_matches(tmp_path: Path) -> None:
    from mason.train.stage import fingerprint

    write_jsonl(tmp_path / "old.jsonl", [qa(1)])
    cfg = TrainingConfig(data=["old.jsonl", "logs/*.jsonl"])
    first = fingerprint(cfg, tmp_path)
    assert first["logs/*.jsonl"] == "missing" and first["old.jsonl"] != "missing"
    write_jsonl(tmp_path / "logs" / "a.jsonl", [qa(2)])
    second = fingerprint(cfg, tmp_path)
    assert second["logs/*.jsonl"] != first["logs/*.jsonl"]
    write_jsonl(tmp_path / "logs" / "b.jsonl", [qa(3)])  # a new log re-trains
    assert fingerprint(cfg, tmp_path) != second
    assert fingerprint(TrainingConfig(data="old.jsonl"), tmp_path) == {"old.jsonl": first["old.jsonl"]}


# --------------------------------------------------------------------------- the eval set


def test_eval_set_reads_the_same_rows_as_training(tmp_path: Path) -> None:
    from mason.evaluate.config import EvaluationConfig
    from mason.evaluate.data import load_eval_set

    write_jsonl(tmp_path / "old.jsonl", [qa(i) for i in range(10)])
    write_jsonl(tmp_path / "logs" / "chats.jsonl", session_rows(TURNS))
    training = {"data": ["old.jsonl", "logs/*.jsonl"], "train_eval_split": 0.2, "seed": 1}
    ctx = TaskContext(task="evaluation", section=EvaluationConfig(), pipeline=PipelineConfig(training=training),
                      base_dir=tmp_path, out_dir=tmp_path / "out", show_progress=False)
    es = load_eval_set(EvaluationConfig(), ctx)
    cfg = TrainingConfig(**training)
    held = split(load_training_data(cfg.data, tmp_path, {}, eval_split=0.2, seed=1).samples)[1]
    assert sorted(r.id for r in es.rows) == sorted(s.row["id"] for s in held)
    assert es.train_rows == 9  # 8 rows of old.jsonl + the collapsed conversation
    assert "old.jsonl" in es.origin and "chats.jsonl" in es.origin


def test_generated_samples_are_not_collapsed(tmp_path: Path) -> None:
    """A generated multi-turn sample may begin with a single-turn one: both are samples of their own."""
    rows = [{**r, "meta": {"split": "train", "task": "chat"}} for r in session_rows(TURNS[:2])]
    gen = write_jsonl(tmp_path / "gen" / "samples.jsonl", rows).parent
    loaded = load_training_data(None, tmp_path, {"generate": gen})
    assert loaded.collapsed == 0 and len(loaded.samples) == 2
    write_jsonl(tmp_path / "mine.jsonl", rows)
    assert load_training_data("mine.jsonl", tmp_path, {}).collapsed == 1
