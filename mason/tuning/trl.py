"""`TRL_SFT` and `TRL_DPO`: a phase's curated data trained by MASON's own training stage.

Not a second trainer: the phase's `data.jsonl` becomes `training.data` of a one-section pipeline
(`base_model: <model>`, `training: {type, method, **options}`) in the plan's workspace, and its
`training` task runs inside the plan's tracker run, exactly as `mason run` runs it: the same config
fields (validated when the optimizer is built), cache by key (the same data and options are not
trained twice), resume of an interrupted run from its last checkpoint, metrics, the train report, and
`mason runs show` listing it beside the phase. Lineage: training key -> the phase's `dataset:<sha>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.tuning.types import Artefact, PhaseContext

_OPTIONS = {"resume_verify": False, "no_input": True, "select": {}}


class _TrainingOptimizer:
    TYPE = "sft"

    def __init__(self, model: str | dict[str, Any], lora: bool = True, **training_options: Any):
        if "type" in training_options:
            raise InputError(f"{type(self).__name__} trains type {self.TYPE}: leave `type` out "
                             f"(use {'TRL_DPO' if self.TYPE == 'sft' else 'TRL_SFT'} for the other)")
        if "data" in training_options:
            raise InputError(f"{type(self).__name__} trains on the phase's curated data: leave `data` out")
        method = training_options.pop("method", None) or ("lora" if lora else "full")
        if not lora and method != "full":
            raise InputError(f"lora=False trains every weight: method {method!r} needs lora=True")
        self.model = model
        self.options = {**training_options, "type": self.TYPE, "method": method}
        self.config(Path("data.jsonl"), Path(".mason"))  # every config problem now, not after fetching data

    def config(self, data: Path, workspace: Path) -> Any:
        """The pipeline config that trains `data` (ConfigError lists every problem, like pipeline.yaml)."""
        from mason.pipeline.loader import parse_config

        return parse_config({"workspace": str(workspace), "base_model": self.model,
                             "training": {**self.options, "data": str(data)}},
                            source=f"{type(self).__name__}(model={self.model!r}, ...)")

    def describe(self) -> dict[str, Any]:
        return {"optimizer": type(self).__name__, "model": self.model, "options": self.options}

    def optimize(self, data: Any, ctx: PhaseContext) -> Artefact:
        """Train on the phase's data.jsonl; returns the adapter (LoRA) or the merged model (full).

        Raises:
            InputError: the curated data is not rows of a dataset format, or outside `run`.
            MasonError: what the training stage raises (see `mason.train`).
        """
        from mason.pipeline.runner import Runner
        from mason.pipeline.workspace import Workspace

        path = ctx.out_dir / "data.jsonl"
        if ctx.tracker is None or ctx.run_id is None:
            raise InputError(f"{type(self).__name__} runs inside a plan: mason.tuning.run(Plan([...]))")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data) or not path.is_file():
            raise InputError(f"phase {ctx.phase!r}: {type(self).__name__} trains on dataset rows (dicts); curate with "
                             f"{'to_sft' if self.TYPE == 'sft' else 'to_preferences'}")
        if not data:
            raise InputError(f"phase {ctx.phase!r}: the curated dataset is empty: nothing to train on",
                             hint="check the source's filters and the curate function")
        config = self.config(path, ctx.workspace)
        runner = Runner(config, base_dir=ctx.base_dir, workspace=Workspace(ctx.workspace),
                        source=f"tuning:{ctx.plan}/{ctx.phase}")
        outcome = None
        for item in runner.plan(["training"], force=ctx.force):
            # the training task runs inside the plan's tracker run (the plan holds the workspace lock)
            outcome = runner.execute(item, ctx.tracker, ctx.run_id, show_progress=ctx.show_progress, options=_OPTIONS)
        if outcome is None or outcome.out_dir is None:
            raise MasonError("the training task did not run")
        if ctx.data_key:
            ctx.add_lineage(outcome.key, ctx.data_key)
        ctx.add_lineage(ctx.key, outcome.key)
        return self._artefact(outcome, Workspace(ctx.workspace).read_manifest("training", outcome.key) or {})

    def _artefact(self, outcome: Any, manifest: dict[str, Any]) -> Artefact:
        folder = Path(outcome.out_dir)
        adapter, merged = folder / "adapter", folder / "merged"
        meta = {"base_model": self.model if isinstance(self.model, str) else self.model.get("name"),
                "training_key": outcome.key, "training_dir": str(folder), "type": self.TYPE,
                "method": self.options["method"], "status": outcome.status,
                "metrics": {k: v for k, v in (manifest.get("metrics") or {}).items() if isinstance(v, (int, float))},
                "counts": dict(outcome.counts)}
        reports = sorted(p.name for p in folder.glob("train_report.*"))
        if reports:
            meta["reports"] = reports
        if adapter.is_dir():
            if merged.is_dir():
                meta["merged"] = str(merged)
            return Artefact("adapter", str(adapter), meta)
        if merged.is_dir():
            return Artefact("model", str(merged), meta)
        raise MasonError(f"the training task wrote neither adapter/ nor merged/ in {folder}")


class TRL_SFT(_TrainingOptimizer):  # noqa: N801 (the mahsm API's name)
    """Supervised fine-tuning of `model` on the phase's data (rows `to_sft` makes) by MASON's training stage.

        TRL_SFT("smollm2-135m-instruct", lora=True, max_steps=20, learning_rate=2e-4)

    Args:
        model: the base model: a built-in name, a folder, a hub id (`base_model` in pipeline.yaml).
        lora: train a LoRA adapter (`method: lora`); False trains every weight (`method: full`).
        **training_options: any field of the `training:` section (`method: qlora`, `epochs`,
            `max_steps`, `learning_rate`, `lora_r`, `batch_size`, `merge`, `eval_steps`...).
    Raises:
        ConfigError: an unknown field or a bad value, listing every problem.
    """

    TYPE = "sft"


class TRL_DPO(_TrainingOptimizer):  # noqa: N801
    """Preference optimization (DPO) of `model` on the phase's pairs (rows `to_preferences` makes);
    same arguments as `TRL_SFT` (`dpo_beta` among the training options)."""

    TYPE = "dpo"
