"""Samples of the data contract as the stages read them: where a dataset is, loading it (any supported
format) into `Sample`s that remember file and line, a task's subset, and the train/eval split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.data.formats import sample_id


@dataclass
class Sample:
    """One contract sample with where it came from (for error messages)."""

    row: dict[str, Any]
    line: int
    source: str

    @property
    def where(self) -> str:
        sid = self.row.get("id") or sample_id(self.row)
        return f"{self.source}:{self.line} (sample {str(sid)[:12]})"


def dataset_path(data: str | None, base_dir: Path, inputs: dict[str, Path]) -> Path:
    """The dataset file: `data` (relative to `base_dir`), else the curated samples.jsonl (task `curate`),
    else the generate task's.

    Raises:
        InputError: no `data` and no generate artifact to read.
    """
    if data is not None:
        path = Path(data).expanduser()
        return path if path.is_absolute() else base_dir / path
    task = "curate" if inputs.get("curate") is not None else "generate"
    folder = inputs.get(task)
    if folder is None:
        raise InputError(
            "training has no dataset: no `training.data` file and no `synthetic_data` task upstream",
            hint="set `training.data: path/to/dataset.jsonl`, or add a `synthetic_data:` section",
        )
    path = folder / "samples.jsonl"
    if not path.is_file():
        raise InputError(f"the {task} artifact {folder} has no samples.jsonl", hint="re-run it with --force")
    return path


def load_samples(path: Path) -> list[Sample]:
    """Every sample of a dataset file (any supported format), converted to the data contract.

    Raises:
        DatasetFileError: missing or unreadable file.
        InputError: a malformed row, as `file:line: why`; an empty file.
    """
    from mason.data.files import load_dataset

    samples = [Sample(row, line, str(path)) for line, row in load_dataset(path)]
    if not samples:
        raise InputError(f"{path} holds no samples")
    return samples


def select(samples: list[Sample], tasks: list[str] | None) -> list[Sample]:
    """The samples whose `meta.task` is one of `tasks` (all of them for None).

    Raises:
        InputError: nothing matches; the message lists the tasks the dataset has.
    """
    if not tasks:
        return samples
    kept = [s for s in samples if (s.row.get("meta") or {}).get("task") in tasks]
    if not kept:
        present = sorted({str((s.row.get("meta") or {}).get("task")) for s in samples})
        raise InputError(
            f"no sample has meta.task in {tasks}", hint=f"tasks in the dataset: {', '.join(present) or 'none'}"
        )
    return kept


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, eval) by `meta.split`; samples without a split train.

    Raises:
        InputError: every sample is an eval sample.
    """
    train, evals = [], []
    for s in samples:
        (evals if (s.row.get("meta") or {}).get("split") == "eval" else train).append(s)
    if not train:
        raise InputError("every sample has meta.split = eval: nothing to train on")
    return train, evals
