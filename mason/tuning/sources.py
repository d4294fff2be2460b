"""Sources: a URI resolved into normalized records (`mason.tuning.records`), cached in the workspace.

| URI | what | filters |
|---|---|---|
| `trace://langfuse/<project>/<task>` | traces named `<task>` in the LangFuse project, through the `langfuse` SDK (keys and host from `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY`, `LANGFUSE_HOST`) | `since`, `until`, `tags`, `environment`, `user_id`, `session_id`, `score` + `min_score`/`max_score`, `limit`, `page_size`, `retries` |
| `dataset://jsonl/<path>` | a dataset file in any format `mason validate` reads (relative paths start at `base_dir`; `dataset://jsonl//abs/path`) | `limit`, `score` + `min_score`/`max_score` |

A new scheme is one `register_source(scheme, provider, resolver)` call. Records of remote sources are
cached under `<workspace>/cache/tuning/sources/<key>.jsonl` (key: URI + filters), so a re-run reads
the cache instead of downloading again; `Source(..., refresh=True)` fetches again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mason.core.errors import InputError
from mason.core.hashing import stable_hash
from mason.core.io import JsonlWriter, atomic_write_json, read_jsonl
from mason.tuning.langfuse import FILTERS as LANGFUSE_FILTERS
from mason.tuning.langfuse import resolve_langfuse
from mason.tuning.records import SourceRef, keep_by_score

if TYPE_CHECKING:
    from mason.tuning.types import Source

Resolver = Callable[["SourceRef", dict[str, Any], Path], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Entry:
    resolver: Resolver
    remote: bool
    filters: tuple[str, ...]
    usage: str


SOURCES: dict[str, dict[str, _Entry]] = {}


def register_source(scheme: str, provider: str, resolver: Resolver, *, remote: bool = True,
                    filters: tuple[str, ...] = (), usage: str = "") -> None:
    """Teach `Source` a new `scheme://provider/...` URI.

    Args:
        resolver: `(ref, filters, base_dir) -> records`.
        remote: whether its records are cached in the workspace (downloads are; local files are not).
        filters: the filter names it takes (others are refused with the list).
        usage: the URI's shape, for error messages (`trace://langfuse/<project>/<task>`).
    """
    SOURCES.setdefault(scheme, {})[provider] = _Entry(resolver, remote, tuple(filters), usage or f"{scheme}://{provider}/...")


def known_uris() -> list[str]:
    """Every URI shape the registry knows, for error messages."""
    return [e.usage for providers in SOURCES.values() for e in providers.values()]


def parse_uri(uri: str) -> tuple[SourceRef, _Entry]:
    """Split a source URI and find its resolver.

    Raises:
        InputError: not `scheme://provider/...`, or an unknown scheme or provider (listing the known ones).
    """
    scheme, sep, rest = uri.partition("://")
    known = ", ".join(known_uris())
    if not sep:
        raise InputError(f"source {uri!r} is not a URI (scheme://...)", hint=f"known sources: {known}")
    providers = SOURCES.get(scheme)
    if providers is None:
        raise InputError(f"unknown source scheme {scheme!r} in {uri!r}; known sources: {known}",
                         hint="register a new one with mason.tuning.register_source(scheme, provider, resolver)")
    provider, _, tail = rest.partition("/")
    entry = providers.get(provider)
    if entry is None:
        raise InputError(f"unknown {scheme}:// provider {provider!r} in {uri!r}; known sources: {known}")
    return SourceRef(uri, scheme, provider, tail), entry


def _check_filters(ref: SourceRef, entry: _Entry, filters: dict[str, Any]) -> None:
    unknown = sorted(set(filters) - set(entry.filters))
    if unknown:
        raise InputError(f"{ref.scheme}://{ref.provider} sources take no filter {', '.join(map(repr, unknown))}; "
                         f"filters: {', '.join(entry.filters) or 'none'}")


def cache_path(workspace: Path, source: Source) -> Path:
    """Where a remote source's records are cached."""
    return workspace / "cache" / "tuning" / "sources" / f"{stable_hash(source.describe())}.jsonl"


def resolve(source: Source, *, workspace: str | Path | None = None, base_dir: str | Path = ".",
            on_fetch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The records of `source` (see the module docstring): from the workspace cache when a remote
    source was fetched before (and not `refresh`), else resolved now and cached.

    Args:
        on_fetch: called with `{"cached": bool, "records": n, "path": cache file}` (for tracking).
    Raises:
        InputError: see `parse_uri` and the resolvers.
    """
    ref, entry = parse_uri(source.uri)
    _check_filters(ref, entry, source.filters)
    cached = cache_path(Path(workspace), source) if workspace is not None and entry.remote else None
    if cached is not None and cached.is_file() and not source.refresh:
        meta = _read_meta(cached)
        if meta.get("complete"):
            records = read_jsonl(cached)
            if on_fetch:
                on_fetch({"cached": True, "records": len(records), "path": str(cached)})
            return records
    records = entry.resolver(ref, dict(source.filters), Path(base_dir).resolve())
    if cached is not None:
        with JsonlWriter(cached, resume=False) as w:
            for rec in records:
                w.write(rec)
        atomic_write_json(cached.with_suffix(".json"), {**source.describe(), "records": len(records), "complete": True,
                                                        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds")})
    if on_fetch:
        on_fetch({"cached": False, "records": len(records), "path": str(cached) if cached else None})
    return records


def _read_meta(cached: Path) -> dict[str, Any]:
    try:
        return json.loads(cached.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- dataset://jsonl


def _dataset_path(ref: SourceRef, base_dir: Path) -> Path:
    if not ref.rest:
        raise InputError(f"{ref.uri!r} names no file", hint="dataset://jsonl/<path>, e.g. dataset://jsonl/data/traces.jsonl")
    path = Path(ref.rest).expanduser()
    return path if path.is_absolute() else base_dir / path


def resolve_dataset(ref: SourceRef, filters: dict[str, Any], base_dir: Path) -> list[dict[str, Any]]:
    """`dataset://jsonl/<path>`: every row of the file as a record.

    Raises:
        InputError, DatasetFileError: a missing file, a row no format reads (`file:line: why`).
    """
    from mason.data.files import iter_rows
    from mason.tuning.records import record_from_row

    path = _dataset_path(ref, base_dir)
    records = []
    for line, row, error in iter_rows(path):
        if error is not None:
            raise InputError(f"{path}:{line}: {error}", hint="each row must be one JSON object")
        try:
            records.append(record_from_row(row, source=str(path), line=line))
        except InputError as e:
            raise InputError(f"{path}:{line}: {e.message}", hint=e.hint) from None
    records = keep_by_score(records, filters)
    limit = filters.get("limit")
    return records[:limit] if limit else records


register_source("dataset", "jsonl", resolve_dataset, remote=False,
                filters=("limit", "score", "min_score", "max_score"), usage="dataset://jsonl/<path>")
register_source("trace", "langfuse", resolve_langfuse, remote=True, filters=LANGFUSE_FILTERS,
                usage="trace://langfuse/<project>/<task>")
