"""The ingest stage: folders of documents and web sites -> documents.jsonl + chunks.jsonl.

Owns file selection (`files`), the sources and the parse cache (`sources`), the parsers of every
format (`parsers`, OCR included), web sources (`web`: fetch, crawl, main-text extraction) and the
chunker. Importing this package is cheap: parsers, markitdown, pypdfium2, trafilatura and the OCR
engine load only when `ingest_documents` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mason.core.task import TaskContext, TaskResult
from mason.ingest.config import IngestConfig

if TYPE_CHECKING:
    from mason.ingest.stage import ingest_documents

__all__ = ["run", "IngestConfig", "ingest_documents"]


def __getattr__(name: str) -> Any:
    # PEP 562: resolve the heavy entry point on first access, not at import time
    if name == "ingest_documents":
        from mason.ingest.stage import ingest_documents

        return ingest_documents
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(ctx: TaskContext) -> TaskResult:
    """Run the `ingest` task: documents -> documents.jsonl + chunks.jsonl.

    The code is `mason.ingest.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.ingest.stage import run as run_stage

    return run_stage(ctx)
