"""The tuning API's types: what a phase produced (`Artefact`), where its data comes from (`Source`),
one collect → curate → optimize → apply step (`Phase`), and the whole plan (`Plan`).

None of these import a heavy library: DSPy, TRL and the LangFuse SDK are imported by the functions
that use them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mason.core.hashing import stable_hash, text_sha1

if TYPE_CHECKING:
    from mason.pipeline.tracker import Tracker

#: the kinds of artefact the built-in optimizers and apply functions know
ARTEFACT_KINDS = ("adapter", "model", "program", "policy", "dataset")


@dataclass(frozen=True)
class Artefact:
    """What a phase produced.

    Attributes:
        kind: `adapter` (a PEFT LoRA folder), `model` (a merged model folder), `program` (a DSPy
            program saved with DSPy's own `save`), `policy` (an OpenAI-compatible endpoint URI:
            `openai://<model>@<base_url>`, `endpoint://<base_url>?model=<model>` or a model name),
            or `dataset` (a JSONL file).
        uri: a path (adapter, model, program, dataset) or an endpoint URI (policy).
        meta: anything else worth keeping (base model, metrics, the training task's key...).
    """

    kind: str
    uri: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """`uri` as a path (for the file kinds)."""
        return Path(self.uri)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": self.uri, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artefact:
        return cls(str(data["kind"]), str(data["uri"]), dict(data.get("meta") or {}))


class Source:
    """Where a phase's records come from: `trace://langfuse/<project>/<task>` or `dataset://jsonl/<path>`.

        Source("trace://langfuse/support/qa", since="2026-01-01", tags=["prod"], min_score=0.5)

    Keyword arguments are the source's filters (see `mason.tuning.sources` for each scheme's). A
    source's records are cached in the workspace (`refresh=True` fetches again).
    """

    def __init__(self, uri: str, *, refresh: bool = False, **filters: Any):
        self.uri = str(uri)
        self.filters = filters
        self.refresh = refresh

    def resolve(self, *, workspace: str | Path | None = None, base_dir: str | Path = ".") -> list[dict[str, Any]]:
        """The normalized records `{id, input, output, messages, tool_calls, scores, metadata}`.

        Args:
            workspace: the workspace whose cache keeps fetched records (None: no cache).
            base_dir: where relative dataset paths resolve.
        Raises:
            InputError: an unknown scheme (the message lists the known ones), a missing file, a
                LangFuse API error (bad keys, project not found, server errors after retries).
        """
        from mason.tuning.sources import resolve

        return resolve(self, workspace=workspace, base_dir=base_dir)

    def describe(self) -> dict[str, Any]:
        """The URI and filters as JSON values (for the tracker and cache keys)."""
        return {"uri": self.uri, "filters": {k: _jsonable(v) for k, v in sorted(self.filters.items())}}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.filters.items())
        return f"Source({self.uri!r}{extra})"


@runtime_checkable
class Optimizer(Protocol):
    """What `Phase.optimize` takes besides a plain callable: `optimize(data, ctx) -> Artefact` and a
    JSON description (`describe()`) that goes into the phase's key and the tracker."""

    def optimize(self, data: Any, ctx: PhaseContext) -> Artefact: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class Phase:
    """One step of a plan: collect records from `source`, `curate` them into a dataset, `optimize`
    on it, `apply` the artefact.

    Attributes:
        name: the phase's name: its task name in the tracker (`mason runs show`) and its folder.
        source: a `Source`, a URI string, or records already in hand (a list of dicts); None: the
            previous phase's artefact is passed to `curate` instead.
        curate: records -> training data (`to_sft`, `to_preferences`, `to_dspy_examples`, your
            function); None passes the records through.
        optimize: `TRL_SFT`, `TRL_DPO`, `DSPY_Teleprompt`, or a callable `data -> Artefact`.
        apply: `apply_lora`, `apply_model`, or a callable `Artefact -> Any`; None applies nothing.
    """

    name: str
    source: Source | str | Sequence[dict[str, Any]] | None = None
    curate: Callable[[Any], Any] | None = None
    optimize: Optimizer | Callable[..., Artefact] | None = None
    apply: Callable[[Artefact], Any] | None = None

    def __post_init__(self) -> None:
        from mason.core.errors import InputError

        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name) or self.name.startswith("."):
            raise InputError(f"phase name {self.name!r} must be letters, digits, '-', '_' or '.' "
                             "(it names a folder and a tracker task)")
        if isinstance(self.source, str):
            self.source = Source(self.source)


@dataclass
class Plan:
    """Phases run in order by `mason.tuning.run`, then the guard(s).

    Attributes:
        phases: the phases, in order.
        guard: a guard (`metric_guard`, `pytest_guard`), a list of them, or None. A failed guard
            stops the plan with exit code 4 after recording why.
        name: shown in `mason runs list` (default `tuning`).
        workspace: the workspace folder (tracker, cache, artefacts); default `.mason` in `base_dir`.
    """

    phases: list[Phase]
    guard: Any = None
    name: str | None = None
    workspace: str | Path | None = None

    def __post_init__(self) -> None:
        from mason.core.errors import InputError

        self.phases = list(self.phases)
        names = [p.name for p in self.phases]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"phase names must be unique in a plan: {', '.join(dupes)}")

    @property
    def guards(self) -> list[Any]:
        if self.guard is None:
            return []
        return list(self.guard) if isinstance(self.guard, (list, tuple)) else [self.guard]


@dataclass
class PhaseContext:
    """What an optimizer or apply function gets while `run` executes a phase.

    Attributes:
        plan: the plan's name.
        phase: the phase's name.
        key: the phase's key (hash of its source records, curated data and optimizer).
        out_dir: the phase's folder in the workspace (records.jsonl, data.jsonl, lineage.jsonl, ...).
        workspace: the workspace folder.
        base_dir: where relative paths resolve.
        tracker: the open tracker (None outside `run`).
        run_id: the tracker run (None outside `run`).
        data_key: the lineage key of the curated data (`dataset:<sha>`), when it was written.
        show_progress: whether to draw progress bars.
        force: re-run what is cached.
    """

    plan: str
    phase: str
    key: str
    out_dir: Path
    workspace: Path
    base_dir: Path
    tracker: Tracker | None = None
    run_id: str | None = None
    data_key: str | None = None
    show_progress: bool = True
    force: bool = False
    artefacts: dict[str, Artefact] = field(default_factory=dict)

    def log_metric(self, name: str, value: float, step: int | None = None, *, task: str | None = None) -> None:
        """Record a metric of this phase in the tracker (nothing outside `run`)."""
        if self.tracker is not None and self.run_id is not None:
            self.tracker.log_metric(self.run_id, task or self.phase, name, float(value), step)

    def add_artifact(self, path: str | Path, kind: str, *, task: str | None = None, key: str | None = None) -> None:
        """Record an artifact of this phase in the tracker (nothing outside `run`)."""
        if self.tracker is not None and self.run_id is not None:
            self.tracker.add_artifact(self.run_id, task or self.phase, key or self.key, str(path), kind)

    def add_lineage(self, child: str, parent: str) -> None:
        """Record that `child` was made from `parent` (keys, `dataset:<sha>`, `sample:<id>`, `trace:<id>`)."""
        if self.tracker is not None:
            self.tracker.add_lineage(child, parent)


# --------------------------------------------------------------------------- describing callables


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if callable(value):
        return describe_callable(value)
    return f"<{type(value).__name__}>"


def describe_callable(fn: Any) -> dict[str, Any]:
    """A stable description of a function for keys: its qualified name and the hash of its source
    (so an edited metric or curate function re-runs the phase)."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = repr(getattr(fn, "__code__", None) and fn.__code__.co_code)
    return {"callable": f"{getattr(fn, '__module__', '?')}.{name}", "source": text_sha1(source)[:12]}


def describe(obj: Any) -> Any:
    """JSON description of a phase part (source, curate, optimizer, apply) for keys and the tracker."""
    if obj is None:
        return None
    if hasattr(obj, "describe") and callable(obj.describe):
        return obj.describe()
    if callable(obj):
        return describe_callable(obj)
    return _jsonable(obj)


def records_hash(records: Iterable[Any]) -> str:
    """The hash of records or data rows (dicts, DSPy examples...) in order."""
    return stable_hash([_row_json(r) for r in records])


def _row_json(row: Any) -> Any:
    if isinstance(row, dict):
        return _jsonable(row)
    to_dict = getattr(row, "toDict", None)  # dspy.Example
    if callable(to_dict):
        inputs = getattr(row, "_input_keys", None)
        return {"example": _jsonable(to_dict()), "inputs": sorted(inputs or [])}
    return _jsonable(row)
