"""The ingest stage: a folder of documents -> documents.jsonl + chunks.jsonl.

Crash safety: documents are processed one at a time in a fixed order. For each document its
chunks are appended to chunks.jsonl and fsynced, then its row is appended to documents.jsonl
and fsynced; that row is the commit marker. A resumed run keeps the committed documents, cuts
chunks.jsonl back to the end of the last committed document's chunks and goes on with the next
files, so a run killed at any moment and resumed writes the same bytes as one never killed.

Parsing is the expensive part, so each parsed document is cached by content hash in
`cache_dir/parsed/`: an unchanged file is never parsed twice, whatever its name or the
chunking settings.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.console import progress, warn
from mason.core.errors import InputError
from mason.core.hashing import file_sha256
from mason.core.io import JsonlWriter, atomic_write_json, iter_jsonl, repair_jsonl_tail, truncate_file
from mason.core.task import TaskContext, TaskResult
from mason.ingest.chunker import chunk_document, count_tokens
from mason.ingest.config import IngestConfig
from mason.ingest.parsers import SKIP_KINDS, ParsedDocument, ParseError, get_parser, parse_document

VERSION = "1"
"""Version of the ingest output (parsers + chunker). Bump it whenever the bytes written for the
same input change: it is part of the parse-cache file names and of `fingerprint`."""

DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
WORKSPACE_DIR = ".mason"


# ---------------------------------------------------------------- file selection


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (`*`, `?`, `[..]`, `**` across folders) into a full-path regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class _Excluder:
    """`exclude` patterns: a pattern matches the relative path, any of its parent folders
    (`drafts` skips everything under drafts/), or, without a `/`, the file name at any depth
    (`*.tmp`)."""

    def __init__(self, patterns: list[str]):
        self.rules = []
        for p in patterns:
            p = p.strip().removeprefix("./").strip("/")
            if p:
                self.rules.append((_glob_regex(p), "/" not in p))

    def __call__(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        for rx, name_only in self.rules:
            if any(rx.match(p) for p in prefixes) or (name_only and any(rx.match(x) for x in parts)):
                return True
        return False


def source_folder(cfg: IngestConfig, base_dir: Path) -> Path:
    """The documents folder (or single file) of `cfg`, resolved against `base_dir`.

    Raises InputError when it does not exist.
    """
    path = Path(cfg.path).expanduser()
    root = (path if path.is_absolute() else Path(base_dir) / path).resolve()
    if not root.exists():
        raise InputError(
            f"documents folder not found: {root}",
            hint=(
                f"create it and put your documents there, or set `knowledge_source.path` "
                f"(relative paths resolve against {Path(base_dir).resolve()})"
            ),
        )
    return root


def _is_saved_page_asset(rel_parts: list[str], root: Path) -> bool:
    """Inside `page_files/` next to `page.html`: the images/scripts of a saved web page."""
    for k, part in enumerate(rel_parts[:-1]):
        if part.endswith("_files"):
            parent = root.joinpath(*rel_parts[:k])
            stem = part[: -len("_files")]
            if any((parent / f"{stem}{ext}").is_file() for ext in (".html", ".htm", ".xhtml")):
                return True
    return False


def select_files(cfg: IngestConfig, base_dir: Path) -> tuple[Path, list[Path]]:
    """The documents to ingest: (folder, files sorted by relative path).

    Skips hidden files and folders (including the `.mason` workspace), Office lock files
    (`~$x.docx`), the asset folders of saved web pages, and `exclude` matches.
    Raises InputError when the folder does not exist.
    """
    root = source_folder(cfg, base_dir)
    if root.is_file():
        return root.parent, [root]
    include = _glob_regex(cfg.glob.strip().removeprefix("./"))
    excluded = _Excluder(cfg.exclude)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # prune in place so os.walk never descends into hidden folders (.git, .mason, ...)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not excluded(prefix + d)]
        for name in filenames:
            rel = prefix + name
            if name.startswith((".", "~$")) or not include.match(rel) or excluded(rel):
                continue
            if "_files/" in rel and _is_saved_page_asset(rel.split("/"), root):
                continue
            found.append((rel, Path(dirpath) / name))
    found.sort(key=lambda item: item[0])
    return root, [p for _, p in found]


def fingerprint(cfg: IngestConfig, base_dir: Path) -> dict:
    """A cheap description of the input: selected files with size and mtime (no hashing).

    Returns {"version", "files": [[relative path, size, mtime_ns], ...]}; the runner puts it in
    the task key so adding, removing or touching a document changes the key.
    Raises InputError when the folder does not exist.
    """
    root, files = select_files(cfg, base_dir)
    listing = []
    for p in files:
        st = p.stat()
        listing.append([p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return {"version": VERSION, "files": listing}


# ---------------------------------------------------------------- parse cache


def _cache_file(cache_dir: Path, sha256: str, parser_name: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", parser_name)
    return Path(cache_dir) / "parsed" / f"{sha256}-{safe}-{VERSION}.json"


def _load_cached(path: Path) -> ParsedDocument | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ParsedDocument(text=data["text"], title=data["title"], pages=data["pages"], parser=data["parser"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged cache entry: parse again


def _parse_cached(path: Path, sha256: str, cfg: IngestConfig, cache_dir: Path | None) -> tuple[ParsedDocument, bool]:
    """(parsed document, came from cache). Raises ParseError."""
    name = get_parser(path, pdf_parser=cfg.pdf_parser).name
    entry = _cache_file(cache_dir, sha256, name) if cache_dir is not None else None
    if entry is not None and (cached := _load_cached(entry)) is not None:
        return cached, True
    doc = parse_document(path, pdf_parser=cfg.pdf_parser)
    if entry is not None:
        try:
            record = {"text": doc.text, "title": doc.title, "pages": doc.pages, "parser": doc.parser}
            atomic_write_json(entry, record, indent=None)
        except OSError as e:  # a cache that cannot be written only costs time, never the document
            warn(f"cannot write the parse cache {entry.parent}: {e.strerror or e}")
    return doc, False


# ---------------------------------------------------------------- resume


@dataclass
class _Committed:
    """What an interrupted run wrote durably: committed document rows, by relative path."""

    docs: dict[str, dict[str, Any]]
    chunk_tokens: int = 0

    @property
    def n_chunks(self) -> int:
        return sum(int(r["n_chunks"]) for r in self.docs.values())


def _chunk_lines_end(path: Path, n_lines: int) -> tuple[int, str | None, int] | None:
    """(byte offset after the first `n_lines` chunk lines, doc of the last one, their tokens).

    None when the file has fewer complete lines.
    """
    offset, doc, tokens = 0, None, 0
    if n_lines == 0:
        return offset, doc, tokens
    with open(path, "rb") as f:
        for k, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return None
            chunk = json.loads(line)
            offset, doc, tokens = offset + len(line), chunk.get("doc"), tokens + int(chunk.get("n_tokens", 0))
            if k == n_lines:
                return offset, doc, tokens
    return None


def _recover(out_dir: Path) -> _Committed:
    """Keep what an interrupted run committed; cut everything after it. See module docstring."""
    docs_path, chunks_path = out_dir / DOCUMENTS, out_dir / CHUNKS
    if not docs_path.exists() or not chunks_path.exists():
        return _Committed({})
    repair_jsonl_tail(docs_path)
    try:
        rows = [row for _, row in iter_jsonl(docs_path)]
        committed = _Committed({r["doc"]: r for r in rows})
        end = _chunk_lines_end(chunks_path, committed.n_chunks)
    except (InputError, KeyError, TypeError, ValueError) as e:
        # not something a kill can leave behind (edited by hand?): redo the task from scratch
        warn(f"cannot resume ingest ({type(e).__name__}: {e}); starting over")
        return _Committed({})
    if end is None or (rows and end[1] != rows[-1]["doc"]):
        warn(f"cannot resume ingest: {CHUNKS} does not match {DOCUMENTS}; starting over")
        return _Committed({})
    truncate_file(chunks_path, end[0])
    committed.chunk_tokens = end[2]
    return committed


# ---------------------------------------------------------------- the stage


@dataclass
class _Tally:
    documents: int = 0
    chunks: int = 0
    characters: int = 0
    chunk_tokens: int = 0
    pages: int = 0
    parsed: int = 0
    from_cache: int = 0
    resumed: int = 0

    def add(self, row: dict[str, Any], chunks: list[dict] | None = None, cached: bool = False) -> None:
        """Count one document: committed earlier (`chunks` None) or written by this run."""
        self.documents += 1
        self.chunks += int(row["n_chunks"])
        self.characters += int(row["n_chars"])
        self.pages += int(row["pages"] or 0)
        if chunks is not None:
            self.chunk_tokens += sum(c["n_tokens"] for c in chunks)
            self.from_cache += cached
            self.parsed += not cached


def _ingest_one(path: Path, rel: str, cfg: IngestConfig, cache_dir: Path | None) -> tuple[dict, list[dict], bool]:
    """Parse (or load from cache) and chunk one file: (document row, chunks, from cache).

    Raises ParseError for a file that gives no usable text.
    """
    get_parser(path, pdf_parser=cfg.pdf_parser)  # unsupported files are refused before hashing
    try:
        size = path.stat().st_size
        sha = file_sha256(path)
        doc, cached = _parse_cached(path, sha, cfg, cache_dir)
    except OSError as e:
        raise ParseError("corrupt", f"cannot read file ({e.strerror or e})") from None
    chunks = chunk_document(
        doc.text,
        doc=rel,
        doc_sha256=sha,
        chunk_size=cfg.chunk_size,
        chunk_overlap=cfg.chunk_overlap,
        min_chunk_tokens=cfg.min_chunk_tokens,
    )
    row = {
        "doc": rel,
        "sha256": sha,
        "size": size,
        "format": path.suffix.lower().lstrip("."),
        "parser": doc.parser,
        "title": doc.title,
        "pages": doc.pages,
        "n_chars": len(doc.text),
        "n_tokens": count_tokens(doc.text),
        "n_chunks": len(chunks),
        "text": doc.text,
    }
    return row, chunks, cached


def _no_usable_document(root: Path, n_files: int, skipped: list[dict]) -> InputError:
    kinds = Counter(s["kind"] for s in skipped)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    from mason.ingest.parsers import supported_extensions

    return InputError(
        f"no usable document in {root}: {n_files} file(s) found, all skipped ({detail})",
        hint=(
            f"supported formats: {' '.join(supported_extensions())}; scanned PDFs need OCR first; "
            "the warnings above say why each file was skipped"
        ),
    )


def _resume_point(out_dir: Path, rels: list[str], resuming: bool) -> _Committed:
    committed = _recover(out_dir) if resuming else _Committed({})
    if list(committed.docs) != [r for r in rels if r in committed.docs]:
        # committed documents must be a prefix of this run's order, or the bytes would differ
        warn("cannot resume ingest: the document list changed since the interrupted run; starting over")
        committed = _Committed({})
    return committed


def _task_result(root: Path, tally: _Tally, skipped: list[dict[str, str]]) -> TaskResult:
    by_kind = {k: sum(1 for s in skipped if s["kind"] == k) for k in SKIP_KINDS}
    return TaskResult(
        counts={
            "documents": tally.documents,
            "chunks": tally.chunks,
            "skipped": len(skipped),
            "parsed": tally.parsed,
            "from_cache": tally.from_cache,
            "resumed": tally.resumed,
            "characters": tally.characters,
            "pages": tally.pages,
            **{f"skipped_{k}": n for k, n in by_kind.items()},
        },
        metrics={"mean_chunk_tokens": round(tally.chunk_tokens / max(tally.chunks, 1), 2)},
        files=[DOCUMENTS, CHUNKS],
        details={"source": str(root), "version": VERSION, "skipped": skipped, "skipped_by_kind": by_kind},
    )


def ingest_documents(
    cfg: IngestConfig,
    base_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    resuming: bool = False,
    show_progress: bool = True,
) -> TaskResult:
    """Parse and chunk the documents selected by `cfg` into `out_dir`.

    Writes documents.jsonl (one row per usable document) and chunks.jsonl. Files that give no
    usable text are skipped with one warning each and listed in `details["skipped"]`.
    Returns a TaskResult with counts (documents, chunks, skipped, parsed, from_cache,
    characters, resumed, pages, skipped_<kind>) and metrics (mean_chunk_tokens).
    Raises InputError when the folder is missing, matches no file, or has no usable document.
    """
    root, files = select_files(cfg, base_dir)
    if not files:
        raise InputError(
            f"no files in {root} match glob {cfg.glob!r}" + (f" and exclude {cfg.exclude}" if cfg.exclude else ""),
            hint="put documents in the folder or change `knowledge_source.glob` / `exclude`",
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rels = [p.relative_to(root).as_posix() for p in files]
    committed = _resume_point(out_dir, rels, resuming)
    tally, skipped = _Tally(chunk_tokens=committed.chunk_tokens), []
    for row in committed.docs.values():
        tally.add(row)
    tally.resumed = tally.documents
    keep = bool(committed.docs)
    with (
        JsonlWriter(out_dir / CHUNKS, resume=keep) as chunks_out,
        JsonlWriter(out_dir / DOCUMENTS, resume=keep) as docs_out,
        progress(disable=not show_progress) as bar,
    ):
        task = bar.add_task("ingest", total=len(files))
        for path, rel in zip(files, rels, strict=True):
            if rel not in committed.docs:
                try:
                    row, chunks, cached = _ingest_one(path, rel, cfg, cache_dir)
                except ParseError as e:
                    warn(f"skipped {rel}: {e.reason} [{e.kind}]")
                    skipped.append({"doc": rel, "reason": e.reason, "kind": e.kind})
                else:
                    for chunk in chunks:
                        chunks_out.write(chunk)
                    chunks_out.sync()
                    docs_out.write(row)  # the commit marker of this document
                    docs_out.sync()
                    tally.add(row, chunks, cached)
            bar.update(task, advance=1)
    if tally.documents == 0:
        raise _no_usable_document(root, len(files), skipped)
    return _task_result(root, tally, skipped)


def run(ctx: TaskContext) -> TaskResult:
    """Runner entry point: `ingest_documents` with the task context's section and folders."""
    return ingest_documents(
        ctx.section,
        ctx.base_dir,
        ctx.out_dir,
        cache_dir=ctx.cache_dir,
        resuming=ctx.resuming,
        show_progress=ctx.show_progress,
    )
