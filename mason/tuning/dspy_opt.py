"""`DSPY_Teleprompt`: a DSPy optimizer (GEPA, MIPROv2, BootstrapFewShot) on the phase's examples.

The compiled program is saved with DSPy's own `save` (`program.json`: the state of every predictor,
instructions and demos; `save_program=True` also writes DSPy's whole-program folder) and returned as
a `program` artefact; `load_program(artefact, student)` reads it back into a copy of the student.
The LM is the one DSPy is configured with (`apply_model`, `dspy.configure`) unless `lm` names one
(an LM or a URI `apply_model` reads); GEPA's reflection LM defaults to the same LM.
"""

from __future__ import annotations

import inspect
from typing import Any

from mason.core.errors import InputError
from mason.core.hashing import stable_hash
from mason.tuning.types import Artefact, PhaseContext, _jsonable, describe_callable

TELEPROMPTERS = ("GEPA", "MIPROv2", "BootstrapFewShot")


def _five_arg_metric(metric: Any) -> Any:
    """GEPA calls `metric(gold, pred, trace, pred_name, pred_trace)`; adapt a 2- or 3-argument metric."""
    try:
        inspect.signature(metric).bind(None, None, None, None, None)
        return metric
    except TypeError:
        pass

    def adapted(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        try:
            return metric(gold, pred, trace)
        except TypeError:
            return metric(gold, pred)

    return adapted


def _lm(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    from mason.tuning.apply import lm_from_uri

    return lm_from_uri(value)


class DSPY_Teleprompt:  # noqa: N801 (the mahsm API's name)
    """Run a DSPy teleprompter on the phase's `dspy.Example`s (curate with `to_dspy_examples`).

        DSPY_Teleprompt(student=dspy.Predict("question -> answer"), teleprompter="GEPA",
                        metric=my_metric, max_metric_calls=20)

    Args:
        student: the DSPy program to optimize (left unchanged: a copy is compiled).
        teleprompter: `GEPA`, `MIPROv2` or `BootstrapFewShot`.
        metric: `metric(gold, pred, trace=None)`; GEPA's feedback metrics (5 arguments, returning
            `dspy.Prediction(score=..., feedback=...)`) are passed through as they are.
        lm: the LM to optimize with (a `dspy.LM` or an `apply_model` URI); default: DSPy's configured LM.
        reflection_lm: GEPA's reflection LM (an LM or URI); default: `lm`.
        reflection_adapter: the adapter of GEPA's instruction proposer (default DSPy's JSONAdapter);
            `lenient_adapter()` takes a small model's whole reply as the new instruction.
        valset: examples to score candidates on (GEPA, MIPROv2); default: `val_share` of the phase's
            examples (0: the training examples themselves).
        compile_options: keyword arguments of the teleprompter's `compile`.
        save_program: also save the whole program (DSPy's `save_program=True` folder, cloudpickle).
        **options: the teleprompter's own arguments; GEPA without a budget gets `auto="light"`.
    Raises:
        InputError: an unknown teleprompter, no metric.
    """

    def __init__(self, student: Any, teleprompter: str = "GEPA", metric: Any = None, *, lm: Any = None,
                 reflection_lm: Any = None, reflection_adapter: Any = None, valset: list[Any] | None = None, val_share: float = 0.0,
                 compile_options: dict[str, Any] | None = None, save_program: bool = False, **options: Any):
        if teleprompter not in TELEPROMPTERS:
            raise InputError(f"unknown teleprompter {teleprompter!r}; known: {', '.join(TELEPROMPTERS)}")
        if metric is None:
            raise InputError("DSPY_Teleprompt needs a metric: metric(gold, pred, trace=None) -> number")
        if not 0 <= val_share < 1:
            raise InputError(f"val_share must be in [0, 1), got {val_share}")
        self.student, self.teleprompter, self.metric = student, teleprompter, metric
        self.lm, self.reflection_lm, self.reflection_adapter = lm, reflection_lm, reflection_adapter
        self.valset, self.val_share = valset, val_share
        self.compile_options = dict(compile_options or {})
        self.save_program = save_program
        self.options = options

    def describe(self) -> dict[str, Any]:
        state = self.student.dump_state() if hasattr(self.student, "dump_state") else repr(self.student)
        return {"optimizer": "DSPY_Teleprompt", "teleprompter": self.teleprompter,
                "student": {"type": type(self.student).__qualname__, "state": stable_hash(_jsonable(state))},
                "metric": describe_callable(self.metric), "lm": _lm_name(self.lm),
                "reflection_lm": _lm_name(self.reflection_lm),
                "reflection_adapter": type(self.reflection_adapter).__name__ if self.reflection_adapter else None,
                "val_share": self.val_share,
                "valset": len(self.valset) if self.valset else None, "options": _jsonable(self.options),
                "compile_options": _jsonable(self.compile_options)}

    def _split(self, examples: list[Any]) -> tuple[list[Any], list[Any] | None]:
        if self.valset is not None:
            return examples, list(self.valset)
        if self.val_share and len(examples) > 1:
            n = max(1, round(len(examples) * self.val_share))
            return examples[:-n], examples[-n:]
        return examples, None

    def _build(self, lm: Any) -> Any:
        import dspy

        opts = dict(self.options)
        if self.teleprompter == "GEPA":
            if not {"auto", "max_metric_calls", "max_full_evals"} & set(opts):
                opts["auto"] = "light"
            opts.setdefault("track_stats", True)
            reflection = _lm(self.reflection_lm) or lm or dspy.settings.lm
            if self.reflection_adapter is not None and "instruction_proposer" not in opts:
                from dspy.teleprompt.gepa.instruction_proposal import InstructionProposer

                opts["instruction_proposer"] = InstructionProposer(adapter=self.reflection_adapter)
            return dspy.GEPA(metric=_five_arg_metric(self.metric), reflection_lm=reflection, **opts)
        if self.teleprompter == "MIPROv2":
            return dspy.MIPROv2(metric=self.metric, **opts)
        return dspy.BootstrapFewShot(metric=self.metric, **opts)

    def optimize(self, data: Any, ctx: PhaseContext) -> Artefact:
        """Compile the student on the examples; save it in the phase's folder.

        Raises:
            InputError: the data are not `dspy.Example`s, or no LM is configured.
        """
        import dspy

        examples = list(data or [])
        if not examples or not all(isinstance(e, dspy.Example) for e in examples):
            raise InputError(f"phase {ctx.phase!r}: DSPY_Teleprompt optimizes on dspy.Example objects",
                             hint="curate=lambda records: mason.tuning.to_dspy_examples(records, signature=...)")
        lm = _lm(self.lm)
        if (lm or dspy.settings.lm) is None:
            raise InputError("DSPy has no LM: pass lm='openai://<model>@<base_url>' or call "
                             "mason.tuning.apply_model(...) / dspy.configure(lm=...) first")
        trainset, valset = self._split(examples)
        with dspy.context(lm=lm) if lm is not None else _nullcontext():
            optimizer = self._build(lm)
            kwargs = dict(self.compile_options)
            if valset is not None and self.teleprompter != "BootstrapFewShot":
                kwargs["valset"] = valset
            compiled = optimizer.compile(self.student.deepcopy(), trainset=trainset, **kwargs)
        path = ctx.out_dir / "program.json"
        compiled.save(str(path))
        meta: dict[str, Any] = {"teleprompter": self.teleprompter, "lm": _lm_name(lm or dspy.settings.lm),
                                "train_examples": len(trainset), "val_examples": len(valset or []),
                                "instructions": {name: p.signature.instructions for name, p in compiled.named_predictors()},
                                "demos": {name: len(p.demos) for name, p in compiled.named_predictors()}}
        score = _best_score(compiled)
        if score is not None:
            meta["metrics"] = {"score": score}
            ctx.log_metric("score", score)
        if self.save_program:
            folder = ctx.out_dir / "program"
            compiled.save(str(folder), save_program=True)
            meta["program_dir"] = str(folder)
        ctx.add_artifact(path, "dspy_program")
        return Artefact("program", str(path), meta)


def _best_score(compiled: Any) -> float | None:
    results = getattr(compiled, "detailed_results", None)  # GEPA with track_stats
    scores = getattr(results, "val_aggregate_scores", None)
    if scores:
        return float(max(scores))
    score = getattr(compiled, "score", None)  # MIPROv2
    return float(score) if isinstance(score, (int, float)) else None


def _lm_name(lm: Any) -> str | None:
    """The LM as a URI `apply_model` reads back (`openai://<model>@<base_url>`), or its model name."""
    if lm is None or isinstance(lm, str):
        return lm
    model = getattr(lm, "model", None)
    base = (getattr(lm, "kwargs", None) or {}).get("api_base")
    if model and model.startswith("openai/"):
        return f"openai://{model.removeprefix('openai/')}@{base}" if base else model.removeprefix("openai/")
    return model


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def load_program(artefact: Artefact | str, student: Any) -> Any:
    """A copy of `student` with the state a `program` artefact saved (DSPy's own `load`).

    Raises:
        InputError: the file is missing.
    """
    from pathlib import Path

    path = Path(artefact.uri if isinstance(artefact, Artefact) else artefact)
    if not path.is_file():
        raise InputError(f"no saved DSPy program at {path}")
    program = student.deepcopy()
    program.load(str(path))
    return program


def lenient_adapter() -> Any:
    """A DSPy chat adapter for small local models: when a reply has no `[[ ## field ## ]]` markers and
    the signature has one output field, the whole reply is that field (instead of a parse error and a
    second, JSON-formatted call). Use it with `dspy.configure(adapter=lenient_adapter())`."""
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    class LenientAdapter(dspy.ChatAdapter):
        def __init__(self) -> None:
            super().__init__(use_json_adapter_fallback=False)

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            try:
                return super().parse(signature, completion)
            except AdapterParseError:
                outputs = list(signature.output_fields)
                if len(outputs) != 1:
                    raise
                text = completion.replace("[[ ## completed ## ]]", "")
                return {outputs[0]: text.split("[[ ##")[0].strip()}

    return LenientAdapter()
