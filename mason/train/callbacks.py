"""Trainer callbacks: live metrics into the tracker and metrics.jsonl, and checkpoint commit markers.

transformers is imported lazily: `metrics_callback(...)` and `checkpoint_marker()` build the
callback classes on first use, so importing this module stays light.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mason.core.io import (
    JsonlWriter,
    atomic_write_json,
    atomic_write_text,
    repair_jsonl_tail,
)

#: Written into a checkpoint folder once every file of it is on disk: the resume point.
COMPLETE_MARKER = "mason_complete.json"

#: Trainer log keys streamed to the tracker, under MASON's names.
_LOG_KEYS = {
    "loss": "loss",
    "eval_loss": "eval_loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    # DPO
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "eval_rewards/margins": "eval_reward_margin",
}


def trim_history(path: Path, stage: str, after_step: int) -> None:
    """Drop a stage's metric rows past `after_step` (a resumed run logs those steps again)."""
    if not path.is_file():
        return
    repair_jsonl_tail(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if ln.strip() and not _past(json.loads(ln), stage, after_step)]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def _past(row: dict[str, Any], stage: str, step: int) -> bool:
    return row.get("stage") == stage and (row.get("step") or 0) > step


class MetricsSink:
    """Where metrics go: the tracker (live) and metrics.jsonl (history for the report).

    Args:
        log_metric: the tracker's `(name, value, step)`.
        history: the metrics.jsonl file (appended to).
        stage: the stage these metrics belong to.
        prefix: put before metric names in the tracker ("" for a single-stage run).
        write: False in the non-main processes of a multi-process launch: rows are kept in
            memory (every process must take the same decisions from them) and written nowhere.
    """

    def __init__(self, log_metric: Callable[[str, float, int | None], None], history: Path, stage: str, prefix: str,
                 write: bool = True):
        self.log_metric, self.stage, self.prefix = log_metric, stage, prefix
        self.writer = JsonlWriter(history, resume=True) if write else None
        # rows an interrupted execution logged before its last checkpoint belong to this stage's history
        self.rows: list[dict[str, Any]] = []
        lines = history.read_text(encoding="utf-8").splitlines() if history.is_file() else []
        for row in map(json.loads, lines):
            if row.get("stage") == stage:
                self._group(row["step"], row["time"], {row["name"]: row["value"]})

    def _group(self, step: int, when: float, values: dict[str, float]) -> None:
        if self.rows and self.rows[-1]["step"] == step:
            self.rows[-1].update(values)
        else:
            self.rows.append({"step": step, "time": when, **values})

    def emit(self, step: int, values: dict[str, float]) -> None:
        """Record one logging event: each value goes to the tracker and, as one
        `{"stage", "step", "name", "value", "time"}` row, to metrics.jsonl (the report's input)."""
        when = round(time.time(), 3)
        for name, value in values.items():
            if self.writer is None:
                continue
            self.log_metric(self.prefix + name, float(value), step)
            self.writer.write({"stage": self.stage, "step": step, "name": name, "value": float(value), "time": when})
        self._group(step, when, values)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def metrics_callback(sink: MetricsSink) -> Any:
    """A TrainerCallback that streams loss, eval loss/perplexity, learning rate, grad norm,
    tokens/s (non-padding) and step time into `sink` as the Trainer logs them."""
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self._step_started = 0.0
            self._step_times: list[float] = []
            self._mark: tuple[float, int] | None = None  # (time, tokens seen) at the last log

        def on_train_begin(self, args, state, control, **kwargs):
            self._mark = (time.perf_counter(), state.num_input_tokens_seen)

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._step_times.append(time.perf_counter() - self._step_started)

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = {ours: float(logs[theirs]) for theirs, ours in _LOG_KEYS.items()
                      if logs and isinstance(logs.get(theirs), (int, float))}
            if "eval_loss" in values and "eval_rewards/margins" not in logs:  # SFT only
                values["eval_perplexity"] = math.exp(min(values["eval_loss"], 50.0))
            if "loss" in values:
                values.update(self._speed(state))
            if values:
                sink.emit(state.global_step, values)

        def _speed(self, state) -> dict[str, float]:
            out = {}
            now = time.perf_counter()
            if self._step_times:
                out["step_time"] = sum(self._step_times) / len(self._step_times)
                self._step_times = []
            if self._mark is not None and now > self._mark[0] and state.num_input_tokens_seen:
                out["tokens_per_s"] = (state.num_input_tokens_seen - self._mark[1]) / (now - self._mark[0])
            self._mark = (now, state.num_input_tokens_seen)
            return out

    return MetricsCallback()


def progress_callback(label: str, enabled: bool) -> Any:
    """A TrainerCallback drawing a rich progress bar of optimizer steps (the Trainer's own printer
    writes raw log dicts to stdout, which `--json` output must not get)."""
    from transformers import TrainerCallback

    from mason.core.console import progress

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self._bar: Any = None
            self._task: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            self._bar = progress(transient=True, disable=not enabled)
            self._bar.start()
            self._task = self._bar.add_task(label, total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self._bar is not None:
                self._bar.update(self._task, completed=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    return ProgressCallback()


def _fsync_tree(folder: Path) -> None:
    # a kill -9 keeps the page cache, but a power cut does not: make the checkpoint durable first
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def checkpoint_marker() -> Any:
    """A TrainerCallback that marks each saved checkpoint complete (the Trainer writes them in place,
    not atomically: a folder without the marker is a half-written one and is never resumed from)."""
    from transformers import TrainerCallback

    class CheckpointMarker(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                _fsync_tree(folder)
                atomic_write_json(folder / COMPLETE_MARKER, {"step": state.global_step})

    return CheckpointMarker()


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete `checkpoint-N` under `folder` (None when there is none)."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / COMPLETE_MARKER).is_file() and p.name[11:].isdigit()]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def drop_incomplete(folder: Path) -> list[str]:
    """Delete checkpoint folders a kill left half-written; returns their names."""
    import shutil

    dropped = []
    for p in sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []:
        if not (p / COMPLETE_MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)
            dropped.append(p.name)
    return dropped
