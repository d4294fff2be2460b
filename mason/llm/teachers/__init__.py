"""Teacher backends, chosen by name from a registry.

    teacher = build_teacher(TeacherConfig(model="ollama/llama3.1"), base_dir=Path("."))

How a `model` string picks its backend (`teacher_kind`), first match wins:

1. `extractive`: no LLM (the extractive generator of the generate stage; not a Teacher).
2. `NAME/...` where NAME is a plugin registered in the `mason.teachers` entry-point group.
3. An existing file or folder (relative to `base_dir`): a `.gguf` file → `gguf`, a HF folder →
   `transformers`.
4. `provider/model` with a known provider (see `providers.PROVIDERS`), or any name with a
   `base_url` → `openai` (any OpenAI-compatible endpoint).
5. A built-in model name (`smollm2-135m-instruct`) → `gguf` when llama-cpp-python is installed,
   else `transformers` on the materialized folder; a hub id `owner/name` → `transformers`.

A plugin's entry point loads a factory `(cfg: TeacherConfig, base_dir: Path) -> Teacher`:

    [project.entry-points."mason.teachers"]
    myservice = "my_pkg.teacher:build"       # then `teacher: myservice/some-model`

Importing this package imports neither openai nor torch nor llama_cpp.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from mason.core.errors import MasonError
from mason.llm.config import TeacherConfig
from mason.llm.teachers.base import (
    ChatRequest,
    Completion,
    RetryableTeacherError,
    Teacher,
    TeacherError,
)

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

TeacherFactory = Callable[[TeacherConfig, Path], Teacher]

ENTRY_POINT_GROUP = "mason.teachers"
EXTRACTIVE = "extractive"


def is_extractive(cfg: TeacherConfig) -> bool:
    """Whether `cfg` asks for the extractive generator (no LLM at all)."""
    return cfg.model.strip().lower() == EXTRACTIVE


def _build_openai(cfg: TeacherConfig, base_dir: Path) -> Teacher:
    from mason.llm.teachers.openai_compat import OpenAICompatTeacher
    from mason.llm.teachers.providers import resolve_endpoint

    endpoint = resolve_endpoint(cfg.model, base_url=cfg.base_url, api_key=cfg.api_key)
    # the HTTP timeout a little above the client's own: TeacherClient's timeout decides;
    # one connection pool per ~8 concurrent requests keeps httpx's per-request pool scan cheap
    pools = max(1, -(-cfg.max_concurrency // (8 * len(endpoint.base_urls))))
    return OpenAICompatTeacher(endpoint, timeout=cfg.timeout + 5.0, pools_per_url=pools)


def _build_gguf(cfg: TeacherConfig, base_dir: Path) -> Teacher:
    from mason.core.errors import ModelNotFoundError
    from mason.llm.teachers.local import LlamaCppTeacher
    from mason.models import get_builtin, resolve_model

    ref = resolve_model(cfg.model, base_dir=base_dir)
    builtin = get_builtin(ref.name) if ref.kind == "builtin" else None
    if builtin is not None and ref.path is None:
        # not check_available(): that also wants torch/transformers, which llama.cpp does not need
        raise ModelNotFoundError(
            f"built-in model {builtin.name!r} ships in the Python package {builtin.package!r}, "
            "which is not installed",
            hint=builtin.install_command,
        )
    if ref.path is None or ref.path.suffix.lower() != ".gguf":
        raise MasonError(f"teacher {cfg.model!r} is not a GGUF model (it is a {ref.kind} model)")
    label = ref.name if ref.kind == "builtin" else None
    return LlamaCppTeacher(ref.path, label=label)


def _build_transformers(cfg: TeacherConfig, base_dir: Path) -> Teacher:
    from mason.llm.teachers.local import TransformersTeacher
    from mason.models import materialize, resolve_model

    ref = resolve_model(cfg.model, base_dir=base_dir)
    label = ref.name if ref.kind in ("builtin", "hub") else None
    return TransformersTeacher(materialize(ref), label=label)


def _build_extractive(cfg: TeacherConfig, base_dir: Path) -> Teacher:
    raise MasonError(
        "teacher `extractive` is not an LLM: the generate stage builds its samples from the text "
        "itself, without a TeacherClient",
        hint="check `is_extractive(cfg)` before calling build_teacher / open_client",
    )


#: Built-in backends by kind. Plugins from the `mason.teachers` entry-point group join them.
TEACHERS: dict[str, TeacherFactory] = {
    "openai": _build_openai,
    "gguf": _build_gguf,
    "transformers": _build_transformers,
    EXTRACTIVE: _build_extractive,
}


@lru_cache(maxsize=1)
def _plugin_entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def plugin_teacher(name: str) -> TeacherFactory | None:
    """The factory a package registered as `name` in the `mason.teachers` entry-point group.

    Only that plugin's module is imported.

    Returns:
        The factory, or None when no plugin has that name.

    Raises:
        MasonError: the plugin is registered but fails to load (names the plugin).
    """
    ep = _plugin_entry_points().get(name.lower())
    if ep is None:
        return None
    try:
        return ep.load()
    except Exception as e:  # any import-time failure: say which plugin it is
        raise MasonError(f"teacher plugin {name!r} ({ep.value}) failed to load: {e}") from e


def teacher_kind(cfg: TeacherConfig, *, base_dir: Path) -> str:
    """Which registry entry serves `cfg` (see the module docstring for the order).

    Returns:
        A key of `TEACHERS` or of `plugin_teachers()`.
    """
    from mason.llm.teachers.providers import split_provider

    model = cfg.model.strip()
    if model.lower() == EXTRACTIVE:
        return EXTRACTIVE
    head, sep, _ = model.partition("/")
    if sep and head.lower() in _plugin_entry_points():
        return head.lower()
    local = Path(model).expanduser()
    local = local if local.is_absolute() else Path(base_dir) / local
    if local.is_file() and local.suffix.lower() == ".gguf":
        return "gguf"
    if local.is_dir():
        return "transformers"
    if cfg.base_url or split_provider(model) is not None:
        return "openai"
    from mason.llm.teachers.local import llama_cpp_available
    from mason.models import get_builtin

    builtin = get_builtin(model)
    if (builtin is not None and builtin.filename) or model.lower().endswith(".gguf"):
        return "gguf" if llama_cpp_available() else "transformers"
    if sep and builtin is None:
        _check_provider_typo(head)
    return "transformers"


def _check_provider_typo(head: str) -> None:
    """Refuse `olama/llama3`: read as a hub id it would fail much later, far from the typo."""
    import difflib

    from mason.llm.teachers.providers import PROVIDERS

    close = difflib.get_close_matches(head.lower(), list(PROVIDERS), n=1, cutoff=0.75)
    if close and close[0] != head.lower():
        raise MasonError(
            f"teacher {head}/... names no known provider; did you mean {close[0]}/...?",
            hint=f"known providers: {', '.join(PROVIDERS)}; a hub model id needs the network",
        )


def build_teacher(cfg: TeacherConfig, *, base_dir: Path) -> Teacher:
    """The backend for `cfg` (nothing is loaded or sent yet; models load on first request).

    Args:
        cfg: the teacher or judge section.
        base_dir: folder relative model paths resolve against (the pipeline YAML's folder).

    Returns:
        A `Teacher`.

    Raises:
        MasonError: `extractive` (not an LLM); an unknown model; a hosted provider without
            an API key (names the env var); a missing backend library (with the install command).
    """
    kind = teacher_kind(cfg, base_dir=base_dir)
    factory = TEACHERS.get(kind) or plugin_teacher(kind)
    if factory is None:  # pragma: no cover - teacher_kind only returns registered kinds
        raise MasonError(f"no teacher backend {kind!r}")
    return factory(cfg, Path(base_dir))


__all__ = [
    "ENTRY_POINT_GROUP",
    "TEACHERS",
    "ChatRequest",
    "Completion",
    "RetryableTeacherError",
    "Teacher",
    "TeacherError",
    "TeacherFactory",
    "build_teacher",
    "is_extractive",
    "plugin_teacher",
    "teacher_kind",
]
