"""The Python API. Everything `pipeline.yaml` and the CLI do is available here.

    from mason import Pipeline, IngestConfig
    p = Pipeline(knowledge_source=IngestConfig(path="docs"), base_dir=".")
    p.run(tasks=["ingest"])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mason.core.task import TaskResult
from mason.curate.config import CurationConfig
from mason.ingest.config import IngestConfig
from mason.pipeline.config import PipelineConfig
from mason.pipeline.loader import load_yaml_config, parse_config
from mason.pipeline.runner import PlannedTask, Runner, RunSummary
from mason.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from mason.curate.session import CurationSession

__all__ = ["Pipeline", "PlannedTask", "RunSummary", "load_config", "run_ingest"]


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file. Raises `ConfigError` listing every problem."""
    return load_yaml_config(path)


class Pipeline:
    """A validated pipeline bound to a base folder (where relative paths resolve) and a workspace.

    Build it from YAML with `Pipeline.from_yaml(path)`, from a dict with `Pipeline.from_dict`,
    or in code: `Pipeline(config)` or `Pipeline(knowledge_source=IngestConfig(...), ...)`.
    """

    def __init__(self, config: PipelineConfig | None = None, *, base_dir: str | Path = ".",
                 source: str | None = None, **sections: Any):
        if config is not None and sections:
            raise TypeError("pass either a PipelineConfig or section keyword arguments, not both")
        if config is None:
            dumped = {k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in sections.items()}
            config = parse_config(dumped, source=source or "Pipeline(...)")
        self.config = config
        self.base_dir = Path(base_dir).resolve()
        self.source = source

    @classmethod
    def from_yaml(cls, path: str | Path) -> Pipeline:
        """Load `pipeline.yaml`; relative paths in it resolve against its folder."""
        path = Path(path)
        return cls(load_yaml_config(path), base_dir=path.resolve().parent, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: str | Path = ".") -> Pipeline:
        """Validate a dict in the pipeline.yaml layout. Raises `ConfigError`."""
        return cls(parse_config(data, source="<dict>"), base_dir=base_dir, source="<dict>")

    @property
    def workspace(self) -> Workspace:
        root = Path(self.config.workspace.path)
        return Workspace(root if root.is_absolute() else self.base_dir / root)

    def _runner(self) -> Runner:
        return Runner(self.config, base_dir=self.base_dir, workspace=self.workspace, source=self.source)

    def plan(self, tasks: list[str] | None = None, *, force: bool = False) -> list[PlannedTask]:
        """What `run` would do, without doing it or writing anything."""
        return self._runner().plan(tasks, force=force)

    def run(self, tasks: list[str] | None = None, *, force: bool = False, wait: float = 0.0,
            show_progress: bool = True, resume_verify: bool = False, no_input: bool = False) -> RunSummary:
        """Run the named tasks (with their upstream tasks) or the whole pipeline.

        Args:
            resume_verify: when resuming generation, check that finished rows still match
                their prompts and regenerate those that do not.
            no_input: never open an interactive step (the curation UI), even in a terminal.

        Returns:
            RunSummary with the tracker's run id and each task's outcome (done or cached).
        Raises:
            ConfigError, TaskNotAvailableError, LockError, or the failing task's MasonError.
        """
        return self._runner().run(tasks, force=force, wait=wait, show_progress=show_progress,
                                  options={"resume_verify": resume_verify, "no_input": no_input})

    @contextmanager
    def curation(self) -> Iterator[CurationSession]:
        """The curation session on the current generate output (what `mason curate` opens), for
        deciding from Python; every decision is saved at once. Runs nothing.

            with Pipeline.from_yaml("pipeline.yaml").curation() as session:
                for item in session.filter("score<4 undecided"):
                    session.reject(item.id, "low judge score")

        Raises:
            InputError: no `curation:`/`synthetic_data:` section, or the generate task has not run yet
                for the current config.
        """
        from mason.core.errors import InputError
        from mason.curate.session import CurationSession
        from mason.curate.stage import decisions_path, seeds_file
        from mason.curate.store import DecisionStore

        if self.config.synthetic_data is None:
            raise InputError("there is nothing to curate: the pipeline has no `synthetic_data:` section")
        section = self.config.curation or CurationConfig()
        planned = {t.name: t for t in self._runner().plan(["generate"])}
        generate = planned["generate"]
        if generate.state != "cached":
            raise InputError("the generate task has not run for this config yet: nothing to curate",
                             hint=f"run `mason run {self.source or 'pipeline.yaml'} generate` first")
        ingest = planned.get("ingest")
        with DecisionStore.open(decisions_path(section, self.base_dir)) as store:
            yield CurationSession.load(generate.out_dir, ingest.out_dir if ingest else None, store,
                                       seeds_file(self.config, self.base_dir))


def run_ingest(config: IngestConfig | dict[str, Any], out_dir: str | Path, *, base_dir: str | Path = ".",
           cache_dir: str | Path | None = None, show_progress: bool = True) -> TaskResult:
    """Run the ingest stage on its own: documents in, `documents.jsonl` + `chunks.jsonl` out.

    Returns:
        TaskResult with counts (documents, chunks, skipped...) and the skipped files' reasons.
    Raises:
        InputError: the folder is missing or holds no usable document.
    """
    from mason.ingest.stage import ingest_documents

    cfg = config if isinstance(config, IngestConfig) else IngestConfig.model_validate(config)
    return ingest_documents(
        cfg, Path(base_dir).resolve(), Path(out_dir),
        cache_dir=Path(cache_dir) if cache_dir else None, show_progress=show_progress,
    )
