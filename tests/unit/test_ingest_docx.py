"""DOCX: real-world Word files (python-docx, LibreOffice) read through mammoth, and the fallbacks
that keep a document when one converter breaks."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from mason.ingest.parsers import ParseError, parse_document
from mason.ingest.parsers import docx as docx_parser
from mason.scaffold.corpus import write_docx
from tests.helpers.docx_files import FACTS, real_world_docx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docx"


@pytest.fixture
def manual(tmp_path: Path) -> Path:
    pytest.importorskip("docx")
    return real_world_docx(tmp_path / "manual.docx")


def test_real_world_docx_keeps_every_fact(manual: Path) -> None:
    doc = parse_document(manual)
    assert doc.parser == "docx/mammoth" and doc.title == "Pump Station Manual"
    for key, fact in FACTS.items():
        assert fact in doc.text, key
    assert "# Pump Station Manual" in doc.text and "## Parts" in doc.text
    assert re.search(r"\|\s*Impeller\s*\|\s*6 months\s*\|", doc.text)  # the table, as a Markdown table
    # equations become LaTeX where they stood: inline $...$, display $$...$$
    assert "$Q=\\frac{V}{t}$, where Q is the flow." in doc.text
    assert "$$E=mc^{2}$$" in doc.text
    assert "Diagram of the pump" in doc.text  # the image's alt text, not its bytes
    assert "base64" not in doc.text and "](" not in doc.text  # no image data, no link targets
    # review comments and page furniture are not the document's content
    assert "Check this figure" not in doc.text and "CONFIDENTIAL" not in doc.text


def test_lxml_round_trip_keeps_the_word_prefixes(manual: Path) -> None:
    # the markitdown pre-processing bug: rewritten XML without `w:` prefixes has no body for mammoth
    repaired = docx_parser.repaired_package(manual.read_bytes())
    with zipfile.ZipFile(io.BytesIO(repaired)) as z:
        xml = z.read("word/document.xml")
    assert b"<w:body>" in xml and b"oMath" not in xml and b"\\frac{V}{t}" in xml
    # a package with nothing to repair is passed through untouched (no re-zip)
    plain = write_docx(manual.parent / "plain.docx", "Policy", [("Scope", ["All staff."])]).read_bytes()
    assert docx_parser.repaired_package(plain) is plain


def test_hand_written_docx_reads_with_mammoth(tmp_path: Path) -> None:
    doc = parse_document(write_docx(tmp_path / "p.docx", "Safety Policy", [("Scope", ["Applies to all crews."])]))
    assert doc.parser == "docx/mammoth" and doc.text == "# Safety Policy\n\n## Scope\n\nApplies to all crews."


def test_styles_without_type_or_id_are_repaired(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "s.docx", "Report", [("Findings", ["Corrosion was found on valve 7."])])
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    # mammoth indexes w:type and w:styleId directly: either missing was a KeyError before
    parts["word/styles.xml"] = parts["word/styles.xml"].replace(
        b"</w:styles>", b'<w:style w:styleId="Odd"><w:name w:val="odd"/></w:style>'
        b'<w:style w:type="paragraph"><w:name w:val="no id"/></w:style></w:styles>')
    assert w.encode() in parts["word/styles.xml"]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    doc = parse_document(path)
    assert doc.parser == "docx/mammoth" and "## Findings" in doc.text and "valve 7" in doc.text


def test_a_broken_converter_falls_back_and_says_so(manual: Path, monkeypatch, capsys) -> None:
    def broken(data: bytes) -> str:
        raise ValueError("Could not find the body element: are you sure this is a docx file?")

    converters = dict(docx_parser.CONVERTERS)
    monkeypatch.setattr(docx_parser, "CONVERTERS", (("mammoth", broken), ("markitdown", broken),
                                                    ("xml", converters["xml"])))
    doc = parse_document(manual)
    assert doc.parser == "docx/xml" and FACTS["body"] in doc.text and FACTS["link"] in doc.text
    assert "# Pump Station Manual" in doc.text and "Impeller | 6 months" in doc.text
    out = capsys.readouterr().err  # the console is stderr
    assert "manual.docx" in out and "read with xml after mammoth: ValueError" in " ".join(out.split())


def test_when_every_converter_fails_the_error_lists_each(manual: Path, monkeypatch) -> None:
    def broken(data: bytes) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(docx_parser, "CONVERTERS", (("mammoth", broken), ("xml", lambda data: "  ")))
    with pytest.raises(ParseError) as err:
        parse_document(manual)
    assert err.value.kind == "corrupt"
    assert "mammoth: RuntimeError: boom" in err.value.reason and "xml: no text" in err.value.reason


def test_xml_fallback_reads_damaged_xml(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "d.docx", "Log", [("Tuesday", ["The crane was inspected."])])
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["word/document.xml"] = parts["word/document.xml"].replace(b"</w:body></w:document>", b"")  # truncated
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    doc = parse_document(path)
    assert doc.parser in ("docx/markitdown", "docx/xml") and "The crane was inspected." in doc.text


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.docx")))
def test_office_suite_files(name: str) -> None:
    # written by LibreOffice (soffice --headless --convert-to docx), see tests/fixtures/docx/README.md
    doc = parse_document(FIXTURES / name)
    assert doc.parser == "docx/mammoth"
    expected = (FIXTURES / name).with_suffix(".expected.txt").read_text(encoding="utf-8").splitlines()
    for line in filter(None, expected):
        assert line in doc.text, line
