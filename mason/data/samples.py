"""Samples of the data contract as the stages read them: where a dataset is (one file, or a list of
files and globs), loading it (any supported format) into `Sample`s that remember file and line,
conversation logs collapsed, a task's subset, and the train/eval split (`meta.split`, or a seeded
share held out of files that mark none)."""

from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.core.hashing import canonical_json
from mason.data.formats import is_preference, sample_id

_GLOB_CHARS = frozenset("*?[")


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


def is_glob(entry: str) -> bool:
    """Whether a `data` entry is a glob pattern (`*`, `?` or `[`) rather than a file name."""
    return bool(_GLOB_CHARS.intersection(entry))


def expand(entry: str, base_dir: Path) -> list[Path]:
    """The files a `data` entry names (relative to `base_dir`): the path itself for a file name
    (whether it exists or not), the matching files in name order for a glob (`**` recurses)."""
    path = Path(entry).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not is_glob(entry):
        return [path]
    return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())


def dataset_paths(data: str | list[str] | None, base_dir: Path, inputs: dict[str, Path]) -> list[Path]:
    """The dataset files: each entry of `data` (a file, or a glob such as `logs/*.jsonl`; see
    `expand`), each file once; without `data`, the upstream samples.jsonl (see `dataset_path`).

    Raises:
        InputError: a glob that matches no file; no `data` and no upstream artifact.
    """
    if data is None:
        return [dataset_path(None, base_dir, inputs)]
    out: list[Path] = []
    for entry in [data] if isinstance(data, str) else data:
        matches = expand(entry, base_dir)
        if not matches:
            prefix = re.split(r"[*?\[]", entry, maxsplit=1)[0]
            folder = expand(prefix, base_dir)[0] if prefix else base_dir
            if prefix and not prefix.endswith(("/", "\\")):
                folder = folder.parent  # `logs/chat-*.jsonl`: the folder is logs/
            where = f"looked in {folder}" if folder.is_dir() else f"there is no folder {folder}"
            raise InputError(f"training data `{entry}` matches no file ({where})",
                             hint="check the pattern and the folder (relative paths start at the YAML's folder), "
                                  "or remove the entry")
        out += matches
    return list(dict.fromkeys(out))  # a file two entries name is read once


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


def from_chat_log(sample: Sample) -> bool:
    """Whether the sample was logged by `mason chat --log` (its `meta.source` names the chat model)."""
    source = (sample.row.get("meta") or {}).get("source")
    return isinstance(source, dict) and "chat" in source


def _chain(messages: list[Any]) -> list[str]:
    """Hashes of every prefix of `messages` (the k-th: the first k messages), each built on the last."""
    out, h = [], b""
    for m in messages:
        h = hashlib.sha1(h + canonical_json(m).encode("utf-8")).digest()
        out.append(h.hex())
    return out


def collapse_prefixes(samples: list[Sample]) -> tuple[list[Sample], int]:
    """Drop each conversation whose messages are a strict prefix of another's (same `meta.split`).

    `mason chat --log` writes one row per exchange with the whole conversation so far, so a
    session of n turns logs n rows each holding the one before; only the longest is kept.
    Preference rows and rows with no messages are left alone. Order is kept.

    Returns:
        (kept samples, how many were dropped).
    """
    prefixes: set[tuple[Any, str]] = set()
    full: list[tuple[Any, str] | None] = []
    for s in samples:
        messages = s.row.get("messages") or []
        if not messages or is_preference(s.row):
            full.append(None)
            continue
        split = (s.row.get("meta") or {}).get("split")
        chain = _chain(messages)
        prefixes.update((split, h) for h in chain[:-1])
        full.append((split, chain[-1]))
    kept = [s for s, key in zip(samples, full, strict=True) if key is None or key not in prefixes]
    return kept, len(samples) - len(kept)


def hold_out(samples: list[Sample], share: float | None, seed: int = 0) -> tuple[list[Sample], int]:
    """Mark `share` of the rows of each file that marks no `meta.split` as eval rows.

    Which rows is decided by a hash of `seed` and each row's id, so it does not depend on the
    order of the file and stays the same from run to run; `round(share * rows)` rows per file, at
    least one when `share` > 0, and never every row (a file of one row keeps it for training).

    Returns:
        (the samples, in the same order; held-out rows are copies with `meta.split = "eval"`,
        how many were held out).
    """
    if not share:
        return samples, 0
    by_file: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_file.setdefault(s.source, []).append(i)
    out, held = list(samples), 0
    for indexes in by_file.values():
        if len(indexes) < 2 or any((samples[i].row.get("meta") or {}).get("split") for i in indexes):
            continue
        n = min(len(indexes) - 1, max(1, round(share * len(indexes))))

        def rank(i: int) -> str:
            sid = str(samples[i].row.get("id") or sample_id(samples[i].row))
            return hashlib.sha1(f"{seed}:{sid}".encode()).hexdigest()

        for i in sorted(indexes, key=rank)[:n]:
            row = dict(samples[i].row)
            row["meta"] = {**(row.get("meta") or {}), "split": "eval"}
            out[i] = Sample(row, samples[i].line, samples[i].source)
        held += n
    return out, held


@dataclass
class TrainingData:
    """The rows of a training dataset as training reads them, and what was done to them.

    Attributes:
        samples: the rows, conversation logs collapsed, held-out rows marked `meta.split: eval`.
        paths: the files read.
        collapsed: rows dropped because their conversation continues in a longer row.
        held_out: rows `train_eval_split` marked as eval rows.
    """

    samples: list[Sample]
    paths: list[Path] = field(default_factory=list)
    collapsed: int = 0
    held_out: int = 0

    @property
    def from_chat_logs(self) -> int:
        """Rows (after collapsing) logged by `mason chat --log`."""
        return sum(1 for s in self.samples if from_chat_log(s))

    @property
    def origin(self) -> str:
        """The file(s), for messages and reports."""
        return ", ".join(str(p) for p in self.paths)

    def summary(self) -> dict[str, Any]:
        """What the train report says about the data: files, rows from chat logs, collapsed, held out."""
        out: dict[str, Any] = {"files": len(self.paths)}
        if self.from_chat_logs or self.collapsed:
            out.update(rows_from_chat_logs=self.from_chat_logs, collapsed_log_rows=self.collapsed)
        if self.held_out:
            out["held_out_for_eval"] = self.held_out
        return out


def load_training_data(data: str | list[str] | None, base_dir: Path, inputs: dict[str, Path], *,
                       eval_split: float | None = None, seed: int = 0) -> TrainingData:
    """Every row of the training dataset (`training.data`, or the upstream samples.jsonl): the files
    read in order, conversation logs collapsed (`collapse_prefixes`; your own files only: generated
    samples are distinct by design, and a multi-turn one may begin with another's exchange), then
    `eval_split` of the rows of each file without `meta.split` held out (`hold_out`).

    Raises:
        InputError, DatasetFileError: see `dataset_paths` and `load_samples`.
    """
    paths = dataset_paths(data, base_dir, inputs)
    samples, collapsed = [s for p in paths for s in load_samples(p)], 0
    if data is not None:
        samples, collapsed = collapse_prefixes(samples)
    samples, held = hold_out(samples, eval_split, seed)
    return TrainingData(samples, paths, collapsed, held)
