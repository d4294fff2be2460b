"""Hostile input: every bad file is skipped with its reason, and nothing from outside the folder leaks."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from mason.ingest import IngestConfig
from mason.ingest.parsers import ParseError, ParseOptions, parse_document, using_options
from mason.ingest.parsers.safety import check_zip
from mason.ingest.stage import fingerprint, ingest_documents, select_files
from tests.helpers.hostile import PASSWD_MARK, SECRET, hostile_folder


def test_hostile_folder_every_bad_file_skipped_with_its_reason(tmp_path: Path) -> None:
    docs, expected = hostile_folder(tmp_path, bomb_mb=20)
    cfg = IngestConfig(path="docs", max_file_mb=2)
    result = ingest_documents(cfg, tmp_path, tmp_path / "out", cache_dir=tmp_path / "cache", show_progress=False)
    skipped = {s["doc"]: (s["kind"], s["reason"]) for s in result.details["skipped"]}
    assert {doc: kind for doc, (kind, _) in skipped.items()} == {d: k for d, k in expected.items() if k}
    rows = [json.loads(x) for x in (tmp_path / "out" / "documents.jsonl").read_text().splitlines()]
    assert [r["doc"] for r in rows] == sorted(d for d, k in expected.items() if k is None)
    assert "outside the documents folder" in skipped["secret.txt"][1] and "/etc/passwd" in skipped["passwd.txt"][1]
    assert "zip bomb" in skipped["bomb.docx"][1]
    assert "not a regular file" in skipped["pipe.txt"][1]
    assert "refused for safety" in skipped["laughs.xml"][1]
    assert "Hello" in next(r["text"] for r in rows if r["doc"] == "xxe.docx")
    out = (tmp_path / "out" / "documents.jsonl").read_text() + (tmp_path / "out" / "chunks.jsonl").read_text()
    cache = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    for leaked in (SECRET, PASSWD_MARK):
        assert leaked not in out and leaked not in cache
    # a linked folder is never entered, and links do not break the fingerprint
    _, files = select_files(cfg, tmp_path)
    assert not any("private" in p.parts for p in files)
    assert fingerprint(cfg, tmp_path)["files"]


def test_zip_bomb_ratio_and_total_checked_before_reading(tmp_path: Path) -> None:
    bomb = tmp_path / "b.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("word/document.xml", "w") as f:
            for _ in range(12):
                f.write(b"\0" * (1 << 20))
    with pytest.raises(ParseError) as err:
        check_zip(bomb, "DOCX")
    assert err.value.kind == "unsafe" and "zip bomb" in err.value.reason and "word/document.xml" in err.value.reason
    normal = tmp_path / "n.zip"
    with zipfile.ZipFile(normal, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.xml", "<a>" + "".join(f"<b>{i}</b>" for i in range(200_000)) + "</a>")
    check_zip(normal, "DOCX")  # 2.6 MB of ordinary XML passes
    with using_options(ParseOptions(max_file_bytes=1 << 20)):
        with pytest.raises(ParseError) as err:
            check_zip(normal, "DOCX")
    assert err.value.kind == "unsafe" and "limit" in err.value.reason


def test_document_text_is_capped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "long.md").write_text("\n\n".join(f"Paragraph {i} of a very long document." for i in range(2000)))
    with using_options(ParseOptions(max_document_chars=5000)):
        doc = parse_document(tmp_path / "long.md")
    assert len(doc.text) <= 5000 and doc.text.endswith("long document.")
    assert "text cut at" in capsys.readouterr().err
