"""Config of the ingest stage: the `knowledge_source` section of pipeline.yaml.

One source (a local folder or a web site) is written inline; several are a list, which is
shorthand for `sources:` (the chunking and limit settings then sit beside `sources:` and apply
to all):

    knowledge_source: {path: docs}
    knowledge_source:
      - path: docs
      - {type: web, urls: ["https://example.org/guide/"], crawl: {max_depth: 2}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from mason.core.config import Section

#: fields that describe where documents come from (the rest are shared by all sources)
SOURCE_FIELDS = ("type", "name", "path", "glob", "exclude", "urls", "sitemap", "crawl", "refresh",
                 "requests_per_second", "timeout")  # fmt: skip


class CrawlConfig(Section):
    """How far a web source follows links from its `urls` and sitemap pages."""

    max_pages: int = Field(100, ge=1, description="Most pages fetched from this source (links found beyond it are left).")
    max_depth: int = Field(
        2, ge=0, description="Links followed from a listed page: 0 = only the listed pages, 1 = the pages they link to, ..."
    )
    same_domain: bool = Field(True, description="Follow links only to the hosts of the listed pages and sitemap.")


class SourceConfig(Section):
    """One source of documents: a folder (or file) on this machine, or pages of a web site."""

    type: Literal["local", "web"] = Field(
        "local",
        description="Kind of source. `local`: files in a folder on this machine; `web`: pages fetched over HTTP(S).",
    )
    name: str | None = Field(
        None,
        description="With several sources: prefix of this local source's document names (default: the folder's name).",
    )
    path: str | None = Field(
        None,
        description="`local`: folder of documents, or one file (relative paths resolve against the pipeline YAML's folder).",
    )
    glob: str = Field("**/*", description="`local`: which files under `path` to read (glob pattern, `**` recurses).")
    exclude: list[str] = Field(
        default_factory=list, description="`local`: glob patterns (relative to `path`) of files to skip."
    )
    urls: list[str] = Field(default_factory=list, description="`web`: pages to fetch (http or https URLs).")
    sitemap: str | None = Field(None, description="`web`: URL of a sitemap.xml whose pages are fetched too.")
    crawl: CrawlConfig | None = Field(
        None,
        description="`web`: follow links from the fetched pages; left out, only `urls` and the sitemap's pages are "
        "fetched (at most 100).",
    )
    refresh: bool = Field(
        False,
        description="`web`: fetch every page again on each run; otherwise pages in the workspace's crawl cache are "
        "reused and a re-run downloads nothing.",
    )
    requests_per_second: float = Field(
        1.0, gt=0, description="`web`: most requests per second to one host (a robots.txt Crawl-delay slows it further)."
    )
    timeout: float = Field(30.0, gt=0, description="`web`: seconds allowed for one page (connecting and downloading).")

    @model_validator(mode="wrap")
    @classmethod
    def _needs_path_or_urls(cls, data: Any, handler: Any) -> Any:
        # a missing `path` is reported as a missing field (with its line), like any required key
        missing: list[InitErrorDetails] = []
        if isinstance(data, dict) and not data.get("sources"):
            kind = data.get("type", "local")
            if kind == "local" and data.get("path") is None:
                missing.append(InitErrorDetails(type="missing", loc=("path",), input=data))
            elif kind == "web" and not data.get("urls") and not data.get("sitemap"):
                missing.append(InitErrorDetails(type="missing", loc=("urls",), input=data))
        try:
            result = handler(data)
        except ValidationError as e:
            if not missing:
                raise
            errors = [InitErrorDetails(type=d["type"], loc=d["loc"], input=d["input"], ctx=d.get("ctx", {}))
                      for d in e.errors() if d["type"] != "value_error"]  # fmt: skip
            raise ValidationError.from_exception_data(cls.__name__, errors + missing) from None
        if missing:
            raise ValidationError.from_exception_data(cls.__name__, missing)
        return result

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> SourceConfig:
        if self.type == "web":
            for url in [*self.urls, *([self.sitemap] if self.sitemap else [])]:
                if not url.lower().startswith(("http://", "https://")):
                    raise ValueError(f"web source: {url!r} is not an http(s) URL")
        return self


class IngestConfig(SourceConfig):
    """Where the documents are and how to cut them into chunks."""

    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="Several sources (local folders and web sites) ingested together; `knowledge_source: [...]` "
        "is shorthand. The other keys of this section then apply to all of them.",
    )
    chunk_size: int = Field(
        512, ge=16, le=32768, description="Token budget of one chunk (approximate tokens, see `chunk_overlap`)."
    )
    chunk_overlap: int = Field(
        64, ge=0, description="Tokens shared by consecutive chunks of the same section; at most half of chunk_size."
    )
    min_chunk_tokens: int = Field(
        24, ge=0, description="Chunks smaller than this are merged into a neighbour of the same document; at most half of chunk_size."
    )
    pdf_parser: Literal["pypdfium2", "markitdown"] = Field(
        "pypdfium2",
        description="PDF text extractor: `pypdfium2` (fast) or `markitdown` (pdfminer; also the fallback).",
    )
    ocr: Literal["auto", "on", "off"] = Field(
        "auto",
        description="OCR (RapidOCR, `pip install 'mason[ocr]'`): `auto` reads PDF pages that have no text layer when "
        "it is installed; `on` also reads image files and fails when it is missing; `off` never.",
    )
    notebook_outputs: bool = Field(
        False, description="Jupyter notebooks: keep the text outputs of code cells (markdown and code are always kept)."
    )
    max_sheet_rows: int = Field(
        5000, ge=1, description="Spreadsheets and CSV: rows kept per sheet; the rest is left out with a warning."
    )
    max_document_chars: int = Field(
        10_000_000, ge=1000, description="Characters of text kept per document; a longer text is cut with a warning."
    )
    max_file_mb: float = Field(
        256,
        gt=0,
        description="Files (and downloads) larger than this are skipped; also the limit of what a zip-based "
        "document (DOCX, XLSX, EPUB...) may unpack to.",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"sources": data}
        return data

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestConfig:
        # larger values make consecutive chunks near-duplicates of each other
        half = self.chunk_size // 2
        if self.chunk_overlap > half:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be at most half of chunk_size ({half})")
        if self.min_chunk_tokens > half:
            raise ValueError(f"min_chunk_tokens ({self.min_chunk_tokens}) must be at most half of chunk_size ({half})")
        if self.sources:
            inline = sorted(k for k in self.model_fields_set if k in SOURCE_FIELDS)
            if inline:
                raise ValueError(f"give the source inline or as `sources:`, not both (found {', '.join(inline)})")
        return self

    def source_list(self) -> list[SourceConfig]:
        """The sources to ingest, in order: `sources`, or this section itself when it names one source."""
        return list(self.sources) if self.sources else [self]
