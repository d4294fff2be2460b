"""OCR with the real engine (RapidOCR on onnxruntime, the `ocr` extra): scanned PDFs and images,
OCR text marked in the chunks, `ocr: auto|on|off`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.ingest import IngestConfig
from mason.ingest.parsers import ParseError, ParseOptions, parse_document, using_options
from mason.ingest.parsers import ocr as ocr_mod
from mason.ingest.stage import ingest_documents
from tests.helpers.scans import scan_image, scanned_pdf

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ocr_mod.ocr_installed(), reason="the ocr extra is not installed"),
]

PAGE_1 = ["Buoy Service Manual", "", "Replace the lid seal every 12 months.", "The battery lasts 400 charge cycles."]
PAGE_2 = ["Calibrate the pH sensor every 30 days.", "Use the pH 7 buffer first."]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _mixed_pdf(path: Path) -> Path:
    """Page 1 has a text layer, page 2 is a scan."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Introduction. This manual has a typed first page and a scanned second page. " * 6)
    pdf.add_page()
    pdf.image(scan_image(PAGE_2), x=0, y=0, w=210, h=297)
    pdf.output(str(path))
    return path


def test_scanned_pdf_is_read_and_marked(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "scan.pdf", [PAGE_1, PAGE_2])
    _mixed_pdf(docs / "mixed.pdf")
    cfg = IngestConfig(path="docs", chunk_size=64, chunk_overlap=0, min_chunk_tokens=8)
    result = ingest_documents(cfg, tmp_path, tmp_path / "out", cache_dir=tmp_path / "cache", show_progress=False)
    assert result.counts["documents"] == 2 and result.counts["ocr_pages"] == 3
    assert result.metrics["ocr_pages_per_s"] > 0
    rows = {r["doc"]: r for r in _rows(tmp_path / "out" / "documents.jsonl")}
    scan = rows["scan.pdf"]
    for line in PAGE_1[2:] + PAGE_2:
        assert line in scan["text"], line
    assert scan["ocr_spans"] == [[0, len(scan["text"])]]
    mixed = rows["mixed.pdf"]
    (start, end), = mixed["ocr_spans"]
    assert mixed["text"][start:end].startswith("Calibrate the pH sensor") and end == len(mixed["text"])
    assert "Introduction" in mixed["text"][:start]
    chunks = [c for c in _rows(tmp_path / "out" / "chunks.jsonl") if c["doc"] == "mixed.pdf"]
    assert [c.get("ocr", False) for c in chunks] == [c["span"][1] > start for c in chunks]
    assert any(c.get("ocr") for c in chunks) and not all(c.get("ocr") for c in chunks)
    # the parse cache keeps the OCR marks: a second run reads nothing again and writes the same bytes
    again = ingest_documents(cfg, tmp_path, tmp_path / "out2", cache_dir=tmp_path / "cache", show_progress=False)
    assert again.counts["from_cache"] == 2 and again.counts["ocr_pages"] == 0
    assert (tmp_path / "out2" / "chunks.jsonl").read_bytes() == (tmp_path / "out" / "chunks.jsonl").read_bytes()


def test_ocr_off_skips_scans_with_the_reason(tmp_path: Path) -> None:
    path = scanned_pdf(tmp_path / "scan.pdf", [PAGE_2])
    with using_options(ParseOptions(ocr="off")):
        with pytest.raises(ParseError) as err:
            parse_document(path)
    assert err.value.kind == "empty" and "OCR is off" in err.value.reason


def test_images_are_read_only_with_ocr_on(tmp_path: Path) -> None:
    img = tmp_path / "notice.png"
    scan_image(PAGE_2, width=1400, height=400).save(img)
    with pytest.raises(ParseError) as err:
        parse_document(img)
    assert err.value.kind == "unsupported" and "ocr: on" in err.value.reason
    with using_options(ParseOptions(ocr="on")):
        doc = parse_document(img)
    assert doc.parser == "ocr-image" and doc.ocr_pages == 1 and doc.ocr_spans == ((0, len(doc.text)),)
    assert "Calibrate the pH sensor every 30 days." in doc.text
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with using_options(ParseOptions(ocr="on")):
        with pytest.raises(ParseError) as err:
            parse_document(tmp_path / "broken.jpg")
    assert err.value.kind == "corrupt"


def test_ocr_on_without_the_engine_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.")
    monkeypatch.setattr(ocr_mod, "ocr_installed", lambda: False)
    with pytest.raises(InputError) as err:
        ingest_documents(IngestConfig(path="docs", ocr="on"), tmp_path, tmp_path / "out", show_progress=False)
    assert "mason[ocr]" in (err.value.hint or "")
