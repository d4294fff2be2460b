"""The ingest stage: outputs, parse cache, file selection, errors, crash-safe resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.core.task import TaskContext
from mason.ingest import IngestConfig
from mason.ingest import stage as stage_mod
from mason.scaffold.corpus import write_docx, write_html, write_pdf, write_sample_corpus
from mason.ingest.stage import VERSION, fingerprint, ingest_documents, run, select_files


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    """A docs folder: the demo corpus, bad files of each kind, and files that must be ignored."""
    folder = tmp_path / "docs"
    write_sample_corpus(folder)
    write_docx(folder / "sub" / "extra.docx", "Extra", [("Notes", ["Nested folders are read too."])])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 garbage garbage")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_pdf(folder / "locked.pdf", "Locked", [("A", ["Secret text."])], user_password="pw")
    (folder / ".hidden.md").write_text("# Hidden\n\nNot to be read.")
    (folder / ".mason").mkdir()
    (folder / ".mason" / "cache.md").write_text("# Workspace\n\nNot to be read.")
    (folder / "~$field-safety-policy.docx").write_bytes(b"lock file")
    write_html(folder / "saved.html", "Saved", [("S", ["Saved page text."])])
    (folder / "saved_files").mkdir()
    (folder / "saved_files" / "style.css").write_text("body {}")
    (folder / "saved_files" / "notes.md").write_text("# asset\n\nasset text")
    (folder / "drafts").mkdir()
    (folder / "drafts" / "wip.md").write_text("# Draft\n\nExcluded.")
    return folder


def _cfg(**kw: object) -> IngestConfig:
    base = {"path": "docs", "exclude": ["drafts"], "chunk_size": 128, "chunk_overlap": 16, "min_chunk_tokens": 8}
    return IngestConfig(**{**base, **kw})


def test_selection_skips_hidden_workspace_assets_and_excluded(docs: Path) -> None:
    root, files = select_files(_cfg(), docs.parent)
    rels = [p.relative_to(root).as_posix() for p in files]
    assert rels == sorted(rels)
    assert rels == [
        "aquasense-s3-manual.pdf", "broken.pdf", "cloud-api-quickstart.md", "empty.txt",
        "field-safety-policy.docx", "firmware-3.2-release-notes.html", "image.png", "locked.pdf",
        "saved.html", "sub/extra.docx", "support-faq.txt",
    ]  # fmt: skip
    _, only_md = select_files(_cfg(glob="**/*.md", exclude=[]), docs.parent)
    assert [p.name for p in only_md] == ["cloud-api-quickstart.md", "wip.md"]
    _, top_pdf = select_files(_cfg(glob="*.pdf", exclude=["b*.pdf"]), docs.parent)
    assert [p.name for p in top_pdf] == ["aquasense-s3-manual.pdf", "locked.pdf"]
    _, no_docx = select_files(_cfg(exclude=["*.docx", "drafts/**"]), docs.parent)
    assert not any(p.suffix == ".docx" for p in no_docx) and not any("drafts" in p.parts for p in no_docx)


def test_outputs_counts_and_skipped_files(docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    result = ingest_documents(_cfg(), docs.parent, out, cache_dir=tmp_path / "cache", show_progress=False)
    assert result.files == ["documents.jsonl", "chunks.jsonl"]
    rows, chunks = _rows(out / "documents.jsonl"), _rows(out / "chunks.jsonl")
    assert [r["doc"] for r in rows] == [
        "aquasense-s3-manual.pdf", "cloud-api-quickstart.md", "field-safety-policy.docx",
        "firmware-3.2-release-notes.html", "saved.html", "sub/extra.docx", "support-faq.txt",
    ]  # fmt: skip
    assert set(rows[0]) >= {
        "doc",
        "sha256",
        "size",
        "format",
        "parser",
        "title",
        "pages",
        "n_chars",
        "n_chunks",
        "text",
    }
    pdf = rows[0]
    assert (pdf["format"], pdf["parser"], pdf["title"]) == ("pdf", "pypdfium2", "AquaSense S3 User Manual")
    assert pdf["pages"] >= 1 and pdf["size"] == (docs / pdf["doc"]).stat().st_size
    text_by_doc = {r["doc"]: r["text"] for r in rows}
    for c in chunks:
        assert c["text"] == text_by_doc[c["doc"]][c["span"][0] : c["span"][1]]
    assert [r["n_chunks"] for r in rows] == [sum(c["doc"] == r["doc"] for c in chunks) for r in rows]
    assert result.counts["documents"] == 7 and result.counts["chunks"] == len(chunks)
    assert result.counts["characters"] == sum(r["n_chars"] for r in rows)
    assert result.counts["parsed"] == 7 and result.counts["from_cache"] == 0
    kinds = {s["doc"]: s["kind"] for s in result.details["skipped"]}
    assert kinds == {
        "broken.pdf": "corrupt",
        "empty.txt": "empty",
        "image.png": "unsupported",
        "locked.pdf": "encrypted",
    }
    assert result.counts["skipped"] == 4 and result.counts["skipped_encrypted"] == 1
    err = capsys.readouterr().err
    for name in kinds:
        assert err.count(f"skipped {name}:") == 1
    assert "password" in err and "Nested folders" not in err


def test_parse_cache_reused_and_changed_doc_reparsed(docs: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cfg = _cfg()
    first = ingest_documents(cfg, docs.parent, tmp_path / "a", cache_dir=cache, show_progress=False)
    assert len(list((cache / "parsed").glob(f"*-{VERSION}.json"))) == 7
    second = ingest_documents(cfg, docs.parent, tmp_path / "b", cache_dir=cache, show_progress=False)
    assert (second.counts["parsed"], second.counts["from_cache"]) == (0, 7)
    for name in ("documents.jsonl", "chunks.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # other chunk settings reuse the parsed text too
    rechunk = ingest_documents(
        _cfg(chunk_size=64, chunk_overlap=0), docs.parent, tmp_path / "c", cache_dir=cache, show_progress=False
    )
    assert rechunk.counts["parsed"] == 0 and rechunk.counts["chunks"] > first.counts["chunks"]
    md = docs / "cloud-api-quickstart.md"
    md.write_text(md.read_text() + "\n## Changelog\n\nVersion 2 of the API adds webhooks.\n")
    third = ingest_documents(cfg, docs.parent, tmp_path / "d", cache_dir=cache, show_progress=False)
    assert (third.counts["parsed"], third.counts["from_cache"]) == (1, 6)
    assert "Version 2 of the API" in (tmp_path / "d" / "documents.jsonl").read_text()
    no_cache = ingest_documents(cfg, docs.parent, tmp_path / "e", show_progress=False)
    assert no_cache.counts["parsed"] == 7
    # a cache that cannot be written costs time, not documents
    (tmp_path / "not-a-dir").write_text("x")
    unwritable = ingest_documents(
        cfg, docs.parent, tmp_path / "f", cache_dir=tmp_path / "not-a-dir", show_progress=False
    )
    assert unwritable.counts["documents"] == 7 and unwritable.counts["skipped"] == 4


def test_fingerprint_changes_when_a_file_is_touched(docs: Path) -> None:
    cfg = _cfg()
    before = fingerprint(cfg, docs.parent)
    assert before["version"] == VERSION
    assert [f[0] for f in before["files"]][:2] == ["aquasense-s3-manual.pdf", "broken.pdf"]
    assert not any(f[0].startswith((".", "drafts")) for f in before["files"])
    target = docs / "support-faq.txt"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert fingerprint(cfg, docs.parent) != before
    assert fingerprint(cfg, docs.parent) == fingerprint(cfg, docs.parent)


def test_missing_folder_and_no_usable_document(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        ingest_documents(IngestConfig(path="nowhere"), tmp_path, tmp_path / "out", show_progress=False)
    assert "documents folder not found" in str(err.value) and err.value.hint
    with pytest.raises(InputError):
        fingerprint(IngestConfig(path="nowhere"), tmp_path)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError) as err:
        ingest_documents(IngestConfig(path="empty_dir"), tmp_path, tmp_path / "out", show_progress=False)
    assert "no files" in str(err.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.pdf").write_bytes(b"not a pdf")
    (bad / "b.jpg").write_bytes(b"jpg")
    with pytest.raises(InputError) as err:
        ingest_documents(IngestConfig(path="bad"), tmp_path, tmp_path / "out", show_progress=False)
    assert "no usable document" in str(err.value) and "1 corrupt, 1 unsupported" in str(err.value)
    assert ".pdf" in (err.value.hint or "")


def test_single_file_path(tmp_path: Path) -> None:
    write_sample_corpus(tmp_path / "docs")
    cfg = IngestConfig(path="docs/support-faq.txt")
    result = ingest_documents(cfg, tmp_path, tmp_path / "out", show_progress=False)
    assert result.counts["documents"] == 1
    assert _rows(tmp_path / "out" / "documents.jsonl")[0]["doc"] == "support-faq.txt"


def test_run_uses_the_task_context(docs: Path, tmp_path: Path) -> None:
    ctx = TaskContext(
        task="ingest", section=_cfg(), pipeline=None, base_dir=docs.parent,
        out_dir=tmp_path / "art", cache_dir=tmp_path / "cache", show_progress=False,
    )  # fmt: skip
    result = run(ctx)
    assert result.counts["documents"] == 7 and (tmp_path / "art" / "chunks.jsonl").exists()
    assert (tmp_path / "cache" / "parsed").is_dir()


# ---------------------------------------------------------------- crash safety


def _reference(docs: Path, tmp_path: Path) -> tuple[bytes, bytes]:
    out = tmp_path / "reference"
    ingest_documents(_cfg(), docs.parent, out, cache_dir=tmp_path / "cache", show_progress=False)
    return (out / "documents.jsonl").read_bytes(), (out / "chunks.jsonl").read_bytes()


def test_resume_after_truncation_mid_line_is_byte_identical(docs: Path, tmp_path: Path) -> None:
    ref_docs, ref_chunks = _reference(docs, tmp_path)
    doc_lines = ref_docs.splitlines(keepends=True)
    chunk_lines = ref_chunks.splitlines(keepends=True)
    rows = [json.loads(x) for x in doc_lines]
    for committed in range(len(rows)):
        n_chunks = sum(r["n_chunks"] for r in rows[:committed])
        out = tmp_path / f"cut{committed}"
        out.mkdir()
        # the kill came while the next document was being written: some of its chunks are on
        # disk, the last one half written, and its row half written
        extra = chunk_lines[n_chunks : n_chunks + 2]
        partial_chunks = b"".join(chunk_lines[:n_chunks] + extra)[:-7]
        (out / "chunks.jsonl").write_bytes(partial_chunks)
        (out / "documents.jsonl").write_bytes(b"".join(doc_lines[:committed]) + doc_lines[committed][:25])
        result = ingest_documents(
            _cfg(), docs.parent, out, cache_dir=tmp_path / "cache", resuming=True, show_progress=False
        )
        assert (out / "documents.jsonl").read_bytes() == ref_docs
        assert (out / "chunks.jsonl").read_bytes() == ref_chunks
        assert result.counts["resumed"] == committed and result.counts["documents"] == len(rows)
        assert result.counts["chunks"] == len(chunk_lines)


class _Killed(BaseException):
    """Stands for kill -9: raised mid-write, after part of a line reached the file."""


def test_crash_at_every_write_then_resume_is_byte_identical(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref_docs, ref_chunks = _reference(docs, tmp_path)
    total_writes = len(ref_docs.splitlines()) + len(ref_chunks.splitlines())
    real_writer = stage_mod.JsonlWriter
    budget = {"left": 0}

    class CrashingWriter(real_writer):  # type: ignore[misc, valid-type]
        def write(self, obj: object) -> None:
            if budget["left"] == 0:
                line = json.dumps(obj, ensure_ascii=False).encode("utf-8")
                self._f.write(line[: len(line) // 2])  # half a line reaches the disk
                self._f.flush()
                raise _Killed()
            budget["left"] -= 1
            super().write(obj)

    for k in range(total_writes):
        out = tmp_path / f"crash{k}"
        monkeypatch.setattr(stage_mod, "JsonlWriter", CrashingWriter)
        budget["left"] = k
        with pytest.raises(_Killed):
            ingest_documents(_cfg(), docs.parent, out, cache_dir=tmp_path / "cache", show_progress=False)
        monkeypatch.setattr(stage_mod, "JsonlWriter", real_writer)
        complete_rows = (out / "documents.jsonl").read_bytes().count(b"\n")
        result = ingest_documents(
            _cfg(), docs.parent, out, cache_dir=tmp_path / "cache", resuming=True, show_progress=False
        )
        # every complete row was kept (a real resume, not a silent start-over)
        assert result.counts["resumed"] == complete_rows, f"crash after {k} writes"
        assert (out / "documents.jsonl").read_bytes() == ref_docs, f"crash after {k} writes"
        assert (out / "chunks.jsonl").read_bytes() == ref_chunks, f"crash after {k} writes"


def test_resume_with_inconsistent_files_starts_over(docs: Path, tmp_path: Path) -> None:
    ref_docs, ref_chunks = _reference(docs, tmp_path)
    out = tmp_path / "weird"
    shutil.copytree(tmp_path / "reference", out)
    (out / "chunks.jsonl").write_bytes(ref_chunks[:100])  # rows claim chunks that are not there
    result = ingest_documents(
        _cfg(), docs.parent, out, cache_dir=tmp_path / "cache", resuming=True, show_progress=False
    )
    assert result.counts["resumed"] == 0
    assert (out / "documents.jsonl").read_bytes() == ref_docs
    assert (out / "chunks.jsonl").read_bytes() == ref_chunks
    # resuming into an empty folder is a normal run
    fresh = ingest_documents(_cfg(), docs.parent, tmp_path / "fresh", resuming=True, show_progress=False)
    assert fresh.counts["resumed"] == 0 and (tmp_path / "fresh" / "chunks.jsonl").read_bytes() == ref_chunks


@pytest.mark.slow
def test_kill_9_during_a_real_run_then_resume(docs: Path, tmp_path: Path) -> None:
    """A real SIGKILL of a child process mid-ingest (slow parser to widen the window)."""
    ref_docs, ref_chunks = _reference(docs, tmp_path)
    out = tmp_path / "killed"
    script = f"""
import time, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from mason.ingest import stage
from mason.ingest.config import IngestConfig
real = stage.chunk_document
def slow(*a, **k):
    time.sleep(0.15)
    return real(*a, **k)
stage.chunk_document = slow
cfg = IngestConfig(path="docs", exclude=["drafts"], chunk_size=128, chunk_overlap=16, min_chunk_tokens=8)
print("start", flush=True)
stage.ingest_documents(
    cfg, {str(docs.parent)!r}, {str(out)!r}, cache_dir={str(tmp_path / "cache")!r}, show_progress=False
)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
    import time

    deadline = time.time() + 20
    while time.time() < deadline and not (out / "documents.jsonl").exists():
        time.sleep(0.01)
    time.sleep(0.4)
    proc.kill()
    proc.wait()
    assert len((out / "documents.jsonl").read_bytes().splitlines()) < len(ref_docs.splitlines())
    ingest_documents(_cfg(), docs.parent, out, cache_dir=tmp_path / "cache", resuming=True, show_progress=False)
    assert (out / "documents.jsonl").read_bytes() == ref_docs
    assert (out / "chunks.jsonl").read_bytes() == ref_chunks


def test_importing_mason_ingest_is_light() -> None:
    code = (
        "import sys, mason.ingest, mason.ingest.stage, mason.ingest.parsers, mason.ingest.chunker;"
        "heavy = [m for m in ('markitdown', 'pypdfium2', 'torch', 'magika', 'bs4', 'fpdf', 'pptx')"
        " if m in sys.modules];"
        "print(heavy)"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert res.stdout.strip() == "[]"
    assert callable(__import__("mason.ingest", fromlist=["ingest_documents"]).ingest_documents)


def test_sample_corpus_is_deterministic_and_usable(tmp_path: Path) -> None:
    from mason.ingest.parsers import parse_document

    first = write_sample_corpus(tmp_path / "a")
    second = write_sample_corpus(tmp_path / "b")
    assert {p.suffix for p in first} == {".pdf", ".docx", ".md", ".html", ".txt"}
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
        doc = parse_document(a)
        assert len(doc.text.split()) >= 200, a.name  # real prose, a few hundred words each
