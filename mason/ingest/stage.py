"""The ingest stage: the documents of local folders and web sites -> documents.jsonl + chunks.jsonl.

Crash safety: documents are processed one at a time in a fixed order. For each document its
chunks are appended to chunks.jsonl and fsynced, then its row is appended to documents.jsonl
and fsynced; that row is the commit marker. A resumed run keeps the committed documents, cuts
chunks.jsonl back to the end of the last committed document's chunks and goes on with the next
files, so a run killed at any moment and resumed writes the same bytes as one never killed
(web pages come back from the crawl cache in the same order).

Which documents there are, and parsing them through the parse cache, is `mason.ingest.sources`;
which files of a folder count is `mason.ingest.files`; web pages are `mason.ingest.web`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.console import info, progress, warn
from mason.core.errors import InputError
from mason.core.io import JsonlWriter, iter_jsonl, repair_jsonl_tail, truncate_file
from mason.core.task import TaskContext, TaskResult
from mason.ingest.chunker import chunk_document, count_tokens
from mason.ingest.config import IngestConfig
from mason.ingest.files import listing, select_files, source_folder
from mason.ingest.parsers import SKIP_KINDS, ParseError, using_options
from mason.ingest.sources import Collected, Item, collect, options_tag, parse_item, parse_options

__all__ = ["VERSION", "fingerprint", "ingest_documents", "run", "select_files", "source_folder"]

VERSION = "2"
"""Version of the ingest output (parsers + chunker). Bump it whenever the bytes written for the
same input change: it is part of the parse-cache file names and of `fingerprint`."""

DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
WORKSPACE_DIR = ".mason"


def fingerprint(cfg: IngestConfig, base_dir: Path) -> dict:
    """A cheap description of the input: selected files with size and mtime (no hashing).

    One local source: {"version", "files": [[relative path, size, mtime_ns], ...]}; several (or
    web): {"version", "sources": [...]}, a web source standing for itself, or for "now" when it
    has `refresh` (so it runs again each time). Raises InputError when a folder does not exist.
    """
    if not cfg.sources and cfg.type == "local":
        root, files = select_files(cfg, base_dir)
        return {"version": VERSION, "files": listing(root, files)}
    parts: list[Any] = []
    for src in cfg.source_list():
        if src.type == "local":
            root, files = select_files(src, base_dir)
            parts.append({"files": listing(root, files)})
        else:
            parts.append({"web": time.time_ns() if src.refresh else None})
    return {"version": VERSION, "sources": parts}


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
    web_pages: int = 0
    ocr_pages: int = 0
    ocr_seconds: float = 0.0

    def add(self, row: dict[str, Any], chunks: list[dict] | None = None, cached: bool = False) -> None:
        """Count one document: committed earlier (`chunks` None) or written by this run."""
        self.documents += 1
        self.chunks += int(row["n_chunks"])
        self.characters += int(row["n_chars"])
        self.pages += int(row["pages"] or 0)
        self.web_pages += "url" in row
        if chunks is not None:
            self.chunk_tokens += sum(c["n_tokens"] for c in chunks)
            self.from_cache += cached
            self.parsed += not cached


def _overlaps(spans: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in spans)


def _ingest_one(item: Item, cfg: IngestConfig, cache_dir: Path | None, tag: str,
                tally: _Tally) -> tuple[dict, list[dict], bool]:  # fmt: skip
    """Parse (or load from cache) and chunk one document: (document row, chunks, from cache).

    `tag` ends the parse-cache key. Raises ParseError for a document that gives no usable text.
    """
    parsed = parse_item(item, cfg, cache_dir, tag)
    doc = parsed.doc
    if doc.ocr_pages and not parsed.cached:
        tally.ocr_pages += doc.ocr_pages
        tally.ocr_seconds += parsed.seconds
    chunks = chunk_document(
        doc.text,
        doc=item.doc,
        doc_sha256=parsed.sha256,
        chunk_size=cfg.chunk_size,
        chunk_overlap=cfg.chunk_overlap,
        min_chunk_tokens=cfg.min_chunk_tokens,
    )
    if doc.ocr_spans:
        for chunk in chunks:
            if _overlaps(doc.ocr_spans, *chunk["span"]):
                chunk["ocr"] = True  # text read with OCR: it may hold recognition errors
    row = {
        "doc": item.doc,
        "sha256": parsed.sha256,
        "size": parsed.size,
        "format": item.path.suffix.lower().lstrip("."),
        "parser": doc.parser,
        "title": doc.title,
        "pages": doc.pages,
        "n_chars": len(doc.text),
        "n_tokens": count_tokens(doc.text),
        "n_chunks": len(chunks),
    }
    if item.page is not None:  # provenance of a web page: where, when, which bytes (sha256)
        row.update(url=item.page.final_url, fetched_at=item.page.fetched_at, content_type=item.page.content_type)
    if doc.ocr_spans:
        row["ocr_spans"] = [list(span) for span in doc.ocr_spans]
    row["text"] = doc.text
    return row, chunks, parsed.cached


def _no_usable_document(where: str, n_items: int, skipped: list[dict]) -> InputError:
    kinds = Counter(s["kind"] for s in skipped)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    from mason.ingest.parsers import supported_extensions

    return InputError(
        f"no usable document in {where}: {n_items} file(s) found, all skipped ({detail})",
        hint=(
            f"supported formats: {' '.join(supported_extensions())}; scanned PDFs need OCR "
            "(pip install 'mason[ocr]'); the warnings above say why each file was skipped"
        ),
    )


def _resume_point(out_dir: Path, rels: list[str], resuming: bool) -> _Committed:
    committed = _recover(out_dir) if resuming else _Committed({})
    if list(committed.docs) != [r for r in rels if r in committed.docs]:
        # committed documents must be a prefix of this run's order, or the bytes would differ
        warn("cannot resume ingest: the document list changed since the interrupted run; starting over")
        committed = _Committed({})
    return committed


def _task_result(where: str | list[str], tally: _Tally, skipped: list[dict[str, str]], found: Collected) -> TaskResult:
    by_kind = {k: sum(1 for s in skipped if s["kind"] == k) for k in SKIP_KINDS}
    metrics = {"mean_chunk_tokens": round(tally.chunk_tokens / max(tally.chunks, 1), 2)}
    if tally.ocr_pages:
        metrics["ocr_pages_per_s"] = round(tally.ocr_pages / max(tally.ocr_seconds, 1e-9), 3)
    if found.downloads:
        metrics["web_requests_per_s"] = round(found.downloads / max(found.web_seconds, 1e-9), 3)
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
            "web_pages": tally.web_pages,
            "web_requests": found.downloads,
            "ocr_pages": tally.ocr_pages,
            **{f"skipped_{k}": n for k, n in by_kind.items()},
        },
        metrics=metrics,
        files=[DOCUMENTS, CHUNKS],
        details={"source": where, "version": VERSION, "skipped": skipped, "skipped_by_kind": by_kind},
    )


def _check_ocr(cfg: IngestConfig) -> None:
    from mason.ingest.parsers.ocr import INSTALL_HINT, ocr_installed

    if cfg.ocr == "on" and not ocr_installed():
        raise InputError("knowledge_source.ocr is `on` but no OCR engine is installed",
                         hint=f"{INSTALL_HINT}, or set `ocr: auto` to read scans only when it is there")  # fmt: skip


def ingest_documents(
    cfg: IngestConfig,
    base_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    resuming: bool = False,
    show_progress: bool = True,
) -> TaskResult:
    """Parse and chunk the documents of the sources of `cfg` into `out_dir`.

    Writes documents.jsonl (one row per usable document; web pages with their URL, fetch time
    and content hash) and chunks.jsonl (chunks with text read by OCR flagged `"ocr": true`).
    Files and pages that give no usable text are skipped with one warning each and listed in
    `details["skipped"]`. Returns a TaskResult with counts (documents, chunks, skipped, parsed,
    from_cache, characters, resumed, pages, web_pages, web_requests, ocr_pages, skipped_<kind>)
    and metrics (mean_chunk_tokens, and ocr_pages_per_s / web_requests_per_s when there were any).
    Raises InputError when a folder is missing, matches no file, or no document is usable.
    """
    _check_ocr(cfg)
    opts = parse_options(cfg)
    with contextlib.ExitStack() as stack:
        stack.enter_context(using_options(opts))
        found = collect(cfg, Path(base_dir), Path(cache_dir) if cache_dir is not None else None, stack)
        single_local = not cfg.sources and cfg.type == "local"
        where: str | list[str] = found.described[0] if single_local else found.described
        if not found.items and not found.skipped:
            raise InputError("no document in any source", hint="check `knowledge_source`: paths, globs, URLs")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{options_tag(opts)}-{VERSION}"
        tally, skipped = _write(found, cfg, out_dir, cache_dir, tag, resuming, show_progress)
    if tally.ocr_pages:
        rate = tally.ocr_pages / max(tally.ocr_seconds, 1e-9)
        info(f"OCR: {tally.ocr_pages} page(s) in {tally.ocr_seconds:.1f} s ({rate:.2f} pages/s)")
    if tally.documents == 0:
        raise _no_usable_document(where if isinstance(where, str) else "the sources",
                                  len(found.items) + len(found.skipped), skipped)  # fmt: skip
    return _task_result(where, tally, skipped, found)


def _write(found: Collected, cfg: IngestConfig, out_dir: Path, cache_dir: Path | None, tag: str, resuming: bool,
           show_progress: bool) -> tuple[_Tally, list[dict[str, str]]]:  # fmt: skip
    """The commit loop (see module docstring): (tally, skipped documents)."""
    rels = [item.doc for item in found.items]
    committed = _resume_point(out_dir, rels, resuming)
    tally, skipped = _Tally(chunk_tokens=committed.chunk_tokens), []
    for s in found.skipped:
        warn(f"skipped {s['doc']}: {s['reason']} [{s['kind']}]")
        skipped.append(s)
    for row in committed.docs.values():
        tally.add(row)
    tally.resumed = tally.documents
    keep = bool(committed.docs)
    with (
        JsonlWriter(out_dir / CHUNKS, resume=keep) as chunks_out,
        JsonlWriter(out_dir / DOCUMENTS, resume=keep) as docs_out,
        progress(disable=not show_progress) as bar,
    ):
        task = bar.add_task("ingest", total=len(found.items))
        for item in found.items:
            if item.doc not in committed.docs:
                try:
                    row, chunks, cached = _ingest_one(item, cfg, cache_dir, tag, tally)
                except ParseError as e:
                    warn(f"skipped {item.doc}: {e.reason} [{e.kind}]")
                    skipped.append({"doc": item.doc, "reason": e.reason, "kind": e.kind})
                else:
                    for chunk in chunks:
                        chunks_out.write(chunk)
                    chunks_out.sync()
                    docs_out.write(row)  # the commit marker of this document
                    docs_out.sync()
                    tally.add(row, chunks, cached)
            bar.update(task, advance=1)
    return tally, skipped


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
