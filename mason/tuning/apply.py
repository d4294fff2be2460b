"""Apply: make a phase's artefact the one in use.

- `apply_lora(artefact)`: records the active adapter in the tracker and in `<workspace>/active.json`
  (what a serving process reads); `gguf=True` also writes the adapter as GGUF LoRA
  (`mason.tuning.gguf_lora`); `llama_server=URL` hands it to a running llama.cpp server (llama.cpp's
  `/lora-adapters` API: the adapter, loaded at start with `--lora FILE`, gets scale 1 and the others
  0); `ollama=NAME` writes an Ollama Modelfile (`FROM <base>` + `ADAPTER <adapter>`) for
  `ollama create NAME -f Modelfile`.
- `apply_model(artefact_or_uri)`: configures DSPy's LM (`dspy.configure(lm=...)`) from
  `openai://<model>@<base_url>`, `endpoint://<base_url>?model=<model>`, or a bare model name served
  at `OPENAI_BASE` / `OPENAI_API_BASE` (OpenAI itself when neither is set); the key is
  `OPENAI_API_KEY` (local servers take any). A `program` artefact brings the LM it was optimized with.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mason.core.errors import InputError, MasonError
from mason.core.io import atomic_write_json, atomic_write_text
from mason.core.redact import redact_text
from mason.tuning.runner import current_context, workspace_for
from mason.tuning.types import Artefact

URI_FORMS = "openai://<model>@<base_url>, endpoint://<base_url>?model=<model>, or a model name with OPENAI_BASE set"


def _http(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def parse_model_uri(uri: str) -> tuple[str, str | None]:
    """(model, base URL or None) of an LM URI (see the module docstring).

    Raises:
        InputError: an unknown scheme or a URI without a model.
    """
    if uri.startswith("openai://"):
        model, sep, base = uri.removeprefix("openai://").partition("@")
        if not model or not sep or not base:
            raise InputError(f"{uri!r}: expected openai://<model>@<base_url>")
        return model, _http(base).rstrip("/")
    if uri.startswith("endpoint://"):
        base, _, query = uri.removeprefix("endpoint://").partition("?")
        model = (parse_qs(query).get("model") or [""])[0]
        if not base or not model:
            raise InputError(f"{uri!r}: expected endpoint://<base_url>?model=<model>")
        return model, _http(base).rstrip("/")
    if "://" in uri or not uri.strip():
        raise InputError(f"unknown model URI {uri!r}; use {URI_FORMS}")
    base = os.environ.get("OPENAI_BASE") or os.environ.get("OPENAI_API_BASE")
    return uri.strip(), base.rstrip("/") if base else None


def lm_from_uri(uri: str, **lm_kwargs: Any) -> Any:
    """A `dspy.LM` for an OpenAI-compatible endpoint named by `uri` (see `parse_model_uri`).

    Args:
        **lm_kwargs: `dspy.LM` arguments (temperature, max_tokens, cache, api_key, ...).
    """
    import dspy

    model, base = parse_model_uri(uri)
    kwargs = {"api_key": os.environ.get("OPENAI_API_KEY") or "none", **lm_kwargs}
    if base:
        kwargs["api_base"] = base
    return dspy.LM(f"openai/{model}", **kwargs)


def _workspace(workspace: str | Path | None, base_dir: str | Path) -> Path:
    ctx = current_context()
    if ctx is not None and workspace is None:
        return ctx.workspace
    return workspace_for(None, workspace, base_dir).root


def _activate(ws: Path, slot: str, entry: dict[str, Any]) -> Path:
    """Write `entry` as `slot` (adapter, model) of `<workspace>/active.json`; returns its path."""
    path = ws / "active.json"
    try:
        active = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        active = {}
    ctx = current_context()
    active[slot] = {**entry, "applied_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "run_id": ctx.run_id if ctx else None, "phase": ctx.phase if ctx else None}
    atomic_write_json(path, active)
    return path


def _track(ws: Path, task: str, path: str, kind: str, active: Path) -> None:
    """Record the activation: in the plan's run, or in a run of its own outside one."""
    ctx = current_context()
    if ctx is not None and ctx.tracker is not None:
        ctx.add_artifact(path, kind)
        ctx.add_artifact(active, "active")
        return
    from mason import __version__
    from mason.core.hashing import stable_hash
    from mason.pipeline.tracker import Tracker

    with Tracker(ws / "mason.db") as tracker:
        run_id = tracker.start_run(pipeline_path=f"tuning:{task}", config={"tuning": {task: {kind: path}}},
                                   name=task, mason_version=__version__)
        key = stable_hash({task: path})
        exec_id = tracker.start_task(run_id, task, key, str(Path(path).parent))
        tracker.add_artifact(run_id, task, key, path, kind)
        tracker.add_artifact(run_id, task, key, str(active), "active")
        tracker.end_task(exec_id, "done", {})
        tracker.end_run(run_id, "success")


# --------------------------------------------------------------------------- LoRA


def base_model_folder(artefact: Artefact, base_dir: str | Path = ".") -> Path:
    """The Hugging Face folder of the artefact's base model (resolved like `base_model:`).

    Raises:
        InputError: the artefact names no base model; ModelNotFoundError: it is not here.
    """
    from mason.models.config import BaseModelConfig
    from mason.models.resolver import model_source

    name = artefact.meta.get("base_model")
    if not name:
        raise InputError(f"{artefact.uri}: the artefact does not say its base model (meta['base_model'])")
    return Path(model_source(BaseModelConfig(name=name), Path(base_dir).resolve()))


def llama_server_handoff(url: str, gguf_path: Path, *, scale: float = 1.0, timeout: float = 30) -> dict[str, Any]:
    """Make `gguf_path` the active LoRA of a running llama.cpp server (`GET`/`POST /lora-adapters`).

    Raises:
        InputError: the server has no `/lora-adapters` API (llama-cpp-python's server: restart it with
            `--lora_path`), or was not started with this adapter.
    """
    base = url.rstrip("/").removesuffix("/v1")
    restart = (f"start llama.cpp's server with the adapter: llama-server -m BASE.gguf --lora {gguf_path} "
               f"--lora-init-without-apply (llama-cpp-python: python -m llama_cpp.server --model BASE.gguf "
               f"--lora_path {gguf_path})")
    try:
        with urllib.request.urlopen(f"{base}/lora-adapters", timeout=timeout) as r:
            adapters = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise InputError(f"{base} has no LoRA hot-swap API (GET /lora-adapters answered {e.code})", hint=restart) from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot reach the llama.cpp server at {base}: {e}") from None
    target = gguf_path.resolve()
    match = next((a for a in adapters if Path(str(a.get("path", ""))).resolve() == target), None)
    if match is None:
        loaded = ", ".join(str(a.get("path")) for a in adapters) or "none"
        raise InputError(f"the llama.cpp server at {base} did not load {gguf_path} (its adapters: {loaded})", hint=restart)
    body = [{"id": a["id"], "scale": scale if a is match else 0.0} for a in adapters]
    request = urllib.request.Request(f"{base}/lora-adapters", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            r.read()
    except (OSError, ValueError) as e:
        raise InputError(f"the llama.cpp server at {base} refused the adapter scales: {e}") from None
    return {"url": base, "id": match["id"], "scale": scale}


def write_ollama_modelfile(folder: Path, base: str | Path, adapter: Path | None = None) -> Path:
    """`folder/Modelfile`: `FROM <base>` and, for an adapter, `ADAPTER <adapter>` (a safetensors adapter
    folder or a GGUF LoRA, both of which Ollama reads)."""
    path = folder / "Modelfile"
    lines = ["# written by mason.tuning.apply_lora", f"FROM {base}"] + ([f"ADAPTER {adapter}"] if adapter else [])
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def apply_lora(artefact: Artefact, *, workspace: str | Path | None = None, base_dir: str | Path = ".",
               gguf: bool = False, llama_server: str | None = None, ollama: str | None = None,
               ollama_from: str | None = None) -> dict[str, Any]:
    """Make a LoRA adapter (or a merged model) the active one; see the module docstring.

        apply=mason.tuning.apply_lora                                   # record it
        apply=functools.partial(mason.tuning.apply_lora, gguf=True, llama_server="http://127.0.0.1:8080")

    Args:
        workspace: where `active.json` goes (inside `run`: the plan's workspace).
        gguf: also write `adapter.gguf` beside the adapter folder (GGUF LoRA for llama.cpp).
        llama_server: a running llama.cpp server to switch to the adapter (implies `gguf`).
        ollama: a model name: write `<workspace>/ollama/<name>/Modelfile`.
        ollama_from: the Modelfile's `FROM` (an Ollama model or a GGUF file); default: the base model.
    Returns:
        what was done: `{"kind", "path", "base_model", "active", ["gguf"], ["llama_server"], ["modelfile"]}`.
    Raises:
        InputError: not an adapter or model artefact, a missing folder, a server that did not load it.
    """
    if artefact.kind not in ("adapter", "model"):
        raise InputError(f"apply_lora applies adapter or model artefacts, not {artefact.kind!r}",
                         hint="use apply_model for DSPy programs and endpoints")
    path = Path(artefact.uri).resolve()
    if not path.is_dir():
        raise InputError(f"no {artefact.kind} folder at {path}")
    ws = _workspace(workspace, base_dir)
    done: dict[str, Any] = {"kind": artefact.kind, "path": str(path), "base_model": artefact.meta.get("base_model")}
    if (gguf or llama_server) and artefact.kind == "adapter":
        from mason.tuning.gguf_lora import write_lora_gguf

        target = path.parent / "adapter.gguf"
        done["gguf"] = write_lora_gguf(path, base_model_folder(artefact, base_dir), target)["path"]
    if llama_server:
        if "gguf" not in done:
            raise InputError("a llama.cpp server takes a LoRA adapter; this artefact is a merged model")
        done["llama_server"] = llama_server_handoff(llama_server, Path(done["gguf"]))
    if ollama:
        if artefact.kind == "model":  # a merged model is the model itself
            modelfile = write_ollama_modelfile(ws / "ollama" / ollama, path)
        else:
            base = ollama_from or done["base_model"]
            if not base:
                raise InputError("the Ollama Modelfile needs the base model: pass ollama_from=")
            if (Path(base_dir) / base).exists():  # a model folder or GGUF file: Ollama wants it absolute
                base = str((Path(base_dir) / base).resolve())
            modelfile = write_ollama_modelfile(ws / "ollama" / ollama, base, Path(done.get("gguf") or path))
        done["modelfile"] = str(modelfile)
    active = _activate(ws, "adapter", done)
    done["active"] = str(active)
    _track(ws, "apply_lora", str(path), "active_adapter", active)
    return done


# --------------------------------------------------------------------------- DSPy LM


def apply_model(target: Artefact | str, *, workspace: str | Path | None = None, base_dir: str | Path = ".",
                **lm_kwargs: Any) -> Any:
    """Configure DSPy's LM (`dspy.configure(lm=...)`) from an endpoint URI, a `policy` artefact, or a
    `program` artefact (the LM it was optimized with); record it in `active.json` and the tracker.

        mason.tuning.apply_model("openai://smollm2@http://127.0.0.1:8080/v1", temperature=0.0)

    Returns:
        the configured `dspy.LM`.
    Raises:
        InputError: an unknown URI form (the message lists the known ones); a program artefact that
            does not say its LM.
    """
    import dspy

    if isinstance(target, Artefact):
        uri = target.meta.get("lm") if target.kind == "program" else target.uri
        if not uri:
            raise InputError(f"the {target.kind} artefact {target.uri} names no LM",
                             hint=f"pass a URI: {URI_FORMS}")
    else:
        uri = str(target)
    lm = lm_from_uri(uri, **lm_kwargs)
    dspy.configure(lm=lm)
    model, base = parse_model_uri(uri)
    ws = _workspace(workspace, base_dir)
    safe = redact_text(uri)
    active = _activate(ws, "model", {"uri": safe, "model": model, "base_url": base})
    _track(ws, "apply_model", safe, "policy", active)
    return lm


def active(workspace: str | Path = ".mason") -> dict[str, Any]:
    """What `active.json` says is in use: `{"adapter": {...}, "model": {...}}` ({} when nothing is).

    Raises:
        MasonError: the file is unreadable.
    """
    path = Path(workspace) / "active.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MasonError(f"{path} is unreadable: {e}") from None
