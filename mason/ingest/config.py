"""Config of the ingest stage: the `knowledge_source` section of pipeline.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mason.core.config import Section


class IngestConfig(Section):
    """Where the documents are and how to cut them into chunks."""

    type: Literal["local"] = Field(
        "local", description="Kind of source. `local`: files in a folder on this machine."
    )
    path: str = Field(
        ..., description="Folder of documents (relative paths resolve against the pipeline YAML's folder)."
    )
    glob: str = Field("**/*", description="Which files under `path` to read (glob pattern, `**` recurses).")
    exclude: list[str] = Field(
        default_factory=list, description="Glob patterns (relative to `path`) of files to skip."
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

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestConfig:
        # larger values make consecutive chunks near-duplicates of each other
        half = self.chunk_size // 2
        if self.chunk_overlap > half:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be at most half of chunk_size ({half})")
        if self.min_chunk_tokens > half:
            raise ValueError(f"min_chunk_tokens ({self.min_chunk_tokens}) must be at most half of chunk_size ({half})")
        return self
