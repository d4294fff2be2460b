"""The documents of the ingest stage's sources, in order, and how each one is parsed (with the parse cache).

Sources are read in the order they are listed; a local folder gives its files sorted by path, a
web source the pages of its crawl in crawl order. With one source, a document is named by its
path relative to the folder (or by its URL); with several, local documents are prefixed with
their source's `name` (default: the folder's name) so names never collide.

Parsing is the expensive part, so each parsed document is cached by content hash in
`cache_dir/parsed/` (the key also holds the parser and the options that change its output): an
unchanged file or page is never parsed twice, whatever its name or the chunking settings. Web
pages are cached by the fetcher in `cache_dir/web/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mason.core.console import info, warn
from mason.core.errors import InputError
from mason.core.hashing import file_sha256
from mason.core.io import atomic_write_json
from mason.ingest.config import IngestConfig, SourceConfig
from mason.ingest.files import check_file, select_files
from mason.ingest.parsers import ParsedDocument, ParseError, ParseOptions, get_parser, parse_document
from mason.ingest.web.fetch import Page


def parse_options(cfg: IngestConfig) -> ParseOptions:
    """The parser settings of the section."""
    return ParseOptions(
        ocr=cfg.ocr,
        notebook_outputs=cfg.notebook_outputs,
        max_sheet_rows=cfg.max_sheet_rows,
        max_document_chars=cfg.max_document_chars,
        max_file_bytes=int(cfg.max_file_mb * (1 << 20)),
    )


def options_tag(opts: ParseOptions) -> str:
    """Short digest of the options that change parsers' output (part of the parse-cache key)."""
    from mason.ingest.parsers.ocr import images_enabled, ocr_enabled

    key = f"{ocr_enabled(opts.ocr)}:{images_enabled()}:{opts.notebook_outputs}:{opts.max_sheet_rows}:{opts.max_document_chars}"
    return hashlib.sha1(key.encode()).hexdigest()[:8]


# ---------------------------------------------------------------- what to ingest


@dataclass
class Item:
    """One document to ingest: its name, and the file (or cached page body) that holds it."""

    doc: str
    path: Path
    root: Path | None = None  # local: its folder (a link out of it is refused)
    page: Page | None = None  # web: how it was fetched


@dataclass
class Collected:
    """Everything the sources hold, in order, and what was skipped before parsing (web pages)."""

    items: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)
    downloads: int = 0
    web_seconds: float = 0.0


def _label(src: SourceConfig, root: Path) -> str:
    return (src.name or root.name or "docs").strip("/")


def collect(cfg: IngestConfig, base_dir: Path, cache_dir: Path | None, stack: contextlib.ExitStack) -> Collected:
    """The documents of every source (see module docstring). Web pages are fetched here.

    Raises InputError: a folder is missing, a lone folder matches no file, two local sources
    share a name, or a web source is used without the `web` extra.
    """
    multi = bool(cfg.sources)
    out = Collected()
    labels: dict[str, str] = {}
    seen: set[str] = set()
    for src in cfg.source_list():
        if src.type == "local":
            root, files = select_files(src, base_dir)
            out.described.append(str(root))
            if not files:
                msg = f"no files in {root} match glob {src.glob!r}" + (f" and exclude {src.exclude}" if src.exclude else "")
                if not multi:
                    raise InputError(msg, hint="put documents in the folder or change `knowledge_source.glob` / `exclude`")
                warn(msg)
                continue
            prefix = ""
            if multi:
                label = _label(src, root)
                if label in labels and labels[label] != str(root):
                    raise InputError(f"two local sources are both named {label!r}",
                                     hint="give each of them a `name:` (their documents are named NAME/path)")  # fmt: skip
                labels[label] = str(root)
                prefix = label + "/"
            for p in files:
                doc = prefix + p.relative_to(root).as_posix()
                if doc not in seen:
                    seen.add(doc)
                    out.items.append(Item(doc, p, root=root))
        else:
            _collect_web(src, cfg, cache_dir, stack, out, seen)
    return out


def _collect_web(src: SourceConfig, cfg: IngestConfig, cache_dir: Path | None, stack: contextlib.ExitStack,
                 out: Collected, seen: set[str]) -> None:  # fmt: skip
    from mason.ingest.web import INSTALL_HINT, web_installed
    from mason.ingest.web.crawl import crawl, normalize_url
    from mason.ingest.web.fetch import Fetcher

    if not web_installed():
        raise InputError("web sources need trafilatura, which is not installed", hint=INSTALL_HINT)
    web_dir = Path(cache_dir) / "web" if cache_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
    started = time.perf_counter()
    with Fetcher(web_dir, refresh=src.refresh, timeout=src.timeout, requests_per_second=src.requests_per_second,
                 max_bytes=int(cfg.max_file_mb * (1 << 20))) as fetcher:  # fmt: skip
        result = crawl(src, fetcher)
        downloads = fetcher.downloads
    out.web_seconds += time.perf_counter() - started
    out.downloads += downloads
    where = ", ".join(src.urls[:3]) + (" ..." if len(src.urls) > 3 else "") or (src.sitemap or "")
    out.described.append(where)
    cached = sum(p.from_cache for p in result.pages)
    info(f"web {where}: {len(result.pages)} page(s), {downloads} request(s), {cached} from the crawl cache")
    if result.left:
        warn(f"web {where}: {result.left} more linked page(s) not fetched (knowledge_source.crawl.max_pages)")
    out.skipped += result.skipped
    for page in result.pages:
        doc = normalize_url(page.final_url) or page.final_url
        if doc not in seen and page.body is not None:
            seen.add(doc)
            out.items.append(Item(doc, web_dir / page.body, page=page))


# ---------------------------------------------------------------- parsing, cached


def cache_file(cache_dir: Path, sha256: str, parser_name: str, tag: str) -> Path:
    """Where the parse cache keeps one parsed document (`tag`: options and stage version)."""
    safe = re.sub(r"[^\w.-]", "_", parser_name)
    return Path(cache_dir) / "parsed" / f"{sha256}-{safe}-{tag}.json"


def _load_cached(path: Path) -> ParsedDocument | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        spans = tuple((int(a), int(b)) for a, b in data.get("ocr_spans", ()))
        return ParsedDocument(text=data["text"], title=data["title"], pages=data["pages"], parser=data["parser"],
                              ocr_spans=spans, ocr_pages=int(data.get("ocr_pages", 0)))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged cache entry: parse again


@dataclass
class Parsed:
    """A parsed item: the document, its content hash and size, and whether it came from the cache."""

    doc: ParsedDocument
    sha256: str
    size: int
    cached: bool
    seconds: float = 0.0


def parse_item(item: Item, cfg: IngestConfig, cache_dir: Path | None, tag: str) -> Parsed:
    """Parse (or load from the cache) one item; `tag` ends its cache key (options, stage version).

    Raises ParseError for one that gives no usable text.
    """
    from mason.ingest.web.extract import TRAFILATURA, page_document

    if item.page is None:
        if item.root is not None:
            check_file(item.path, item.root)  # links out of the folder, pipes, devices
        name = get_parser(item.path, pdf_parser=cfg.pdf_parser).name  # refused before hashing
        try:
            size, sha = item.path.stat().st_size, file_sha256(item.path)
        except OSError as e:
            raise ParseError("corrupt", f"cannot read file ({e.strerror or e})") from None

        def parse() -> ParsedDocument:
            return parse_document(item.path, pdf_parser=cfg.pdf_parser)
    else:
        page = item.page
        name = TRAFILATURA if page.is_html else get_parser(item.path, pdf_parser=cfg.pdf_parser).name
        sha, size = str(page.sha256), item.path.stat().st_size

        def parse() -> ParsedDocument:
            return page_document(item.path, page.final_url, page.is_html)

    entry = cache_file(cache_dir, sha, name, tag) if cache_dir is not None else None
    if entry is not None and (cached := _load_cached(entry)) is not None:
        return Parsed(cached, sha, size, True)
    started = time.perf_counter()
    try:
        doc = parse()
    except OSError as e:
        raise ParseError("corrupt", f"cannot read file ({e.strerror or e})") from None
    seconds = time.perf_counter() - started
    if entry is not None:
        try:
            record = {"text": doc.text, "title": doc.title, "pages": doc.pages, "parser": doc.parser,
                      "ocr_spans": [list(s) for s in doc.ocr_spans], "ocr_pages": doc.ocr_pages}  # fmt: skip
            atomic_write_json(entry, record, indent=None)
        except OSError as e:  # a cache that cannot be written only costs time, never the document
            warn(f"cannot write the parse cache {entry.parent}: {e.strerror or e}")
    return Parsed(doc, sha, size, False, seconds)
