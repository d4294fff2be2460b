"""Parsers: every supported format, and each kind of bad file classified with a clear reason."""

from __future__ import annotations

import re
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from mason.ingest import parsers as registry
from mason.ingest.parsers import ParsedDocument, ParseError, get_parser, parse_document, register_parser
from mason.ingest.parsers.base import clean_markdown, normalize_text
from mason.scaffold.corpus import write_docx, write_html, write_markdown, write_pdf, write_pptx

SECTIONS = [
    ("Deployment", ["Hold the magnetic key against the lid for five seconds.", "The light turns solid green."]),
    ("Calibration", ["Calibrate the pH sensor every 30 days with the pH 7 buffer first."]),
]


def _words(text: str) -> list[str]:
    return re.sub(r"[#*_|`>-]", " ", text).split()


# ---------------------------------------------------------------- PDF


def test_pdf_headings_paragraphs_and_running_footers(tmp_path: Path) -> None:
    long_paras = [
        f"Paragraph {k} explains how the buoy stores readings while the network is down and uploads "
        f"them in order when it comes back, so operators never lose a measurement during an outage."
        for k in range(40)
    ]
    path = write_pdf(tmp_path / "m.pdf", "Buoy Manual", [("Storage", long_paras), ("Power", ["Solar panel."])])
    doc = parse_document(path)
    assert doc.parser == "pypdfium2" and doc.title == "Buoy Manual"
    assert doc.pages is not None and doc.pages >= 3
    assert doc.text.startswith("# Buoy Manual\n\n## Storage\n\n")
    assert "\n## Power\n" in doc.text
    # every paragraph comes back whole: lines unwrapped, paragraphs cut by page breaks rejoined
    for para in long_paras:
        assert para in doc.text.split("\n\n"), para
    assert not re.search(r"(?m)^Page \d+$", doc.text), "page-number footers must be removed"


def test_pdf_line_end_hyphens_and_running_headers(tmp_path: Path) -> None:
    from fpdf import FPDF

    class _Pdf(FPDF):
        def header(self) -> None:
            self.set_font("helvetica", size=8)
            self.cell(0, 6, "Buoy Manual", new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

    pdf = _Pdf()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.cell(0, 10, "Buoy Manual", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 6, "The word is hyphenated as an exam-", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "ple here, while the brand is Well-", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "Known.", new_x="LMARGIN", new_y="NEXT")
    for k in range(3):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page body {k} of the manual.")
    pdf.output(str(tmp_path / "h.pdf"))
    text = parse_document(tmp_path / "h.pdf").text
    assert text.startswith("# Buoy Manual\n\n")  # the big title stays, the small header goes
    assert text.count("Buoy Manual") == 1
    assert "hyphenated as an example here, while the brand is Well-Known." in text


def test_pdf_markitdown_option_gives_same_words(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "m.pdf", "Manual", SECTIONS)
    fast = parse_document(path)
    slow = parse_document(path, pdf_parser="markitdown")
    assert slow.parser == "markitdown-pdf"
    # pdfminer keeps the "Page 1" footer that the PDFium parser removes
    assert _words(fast.text) == _words(re.sub(r"Page \d+", "", slow.text))


def test_encrypted_pdf_is_classified(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", "Secret", SECTIONS, user_password="hunter2")
    with pytest.raises(ParseError) as err:
        parse_document(path)
    assert err.value.kind == "encrypted" and "password" in err.value.reason


@pytest.mark.parametrize("pdf_parser", ["pypdfium2", "markitdown"])
def test_corrupt_and_truncated_pdfs_are_classified(tmp_path: Path, pdf_parser: str) -> None:
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    good = write_pdf(tmp_path / "good.pdf", "Good", SECTIONS).read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good[: len(good) // 3])
    for path in (garbage, truncated):
        with pytest.raises(ParseError) as err:
            parse_document(path, pdf_parser=pdf_parser)
        assert err.value.kind == "corrupt", err.value.reason
        assert "PDF" in err.value.reason


def test_pdf_without_text_layer_says_ocr_is_not_supported(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 120, 160, style="F")  # a "scanned" page: graphics, no text
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "scan.pdf")
    assert err.value.kind == "empty" and "OCR" in err.value.reason


# ---------------------------------------------------------------- Office


def test_docx_written_by_hand(tmp_path: Path) -> None:
    doc = parse_document(write_docx(tmp_path / "p.docx", "Safety Policy", SECTIONS))
    assert doc.parser == "docx/mammoth" and doc.title == "Safety Policy"
    assert doc.text.startswith("# Safety Policy\n\n## Deployment\n\nHold the magnetic key")
    assert "## Calibration\n\nCalibrate the pH sensor every 30 days" in doc.text


def test_docx_written_by_python_docx(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("Handbook", level=1)
    d.add_heading("Leave", level=2)
    d.add_paragraph("Employees get 25 days of paid leave per year.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Years", "Days"
    table.cell(1, 0).text, table.cell(1, 1).text = "5+", "28"
    d.save(tmp_path / "h.docx")
    text = parse_document(tmp_path / "h.docx").text
    assert "# Handbook" in text and "## Leave" in text and "25 days of paid leave" in text
    assert "Years" in text and "28" in text


def test_pptx_slides_become_sections(tmp_path: Path) -> None:
    doc = parse_document(write_pptx(tmp_path / "d.pptx", "Roadmap", SECTIONS))
    assert doc.parser == "markitdown-pptx" and doc.pages == 3 and doc.title == "Roadmap"
    assert "# Deployment\n\nHold the magnetic key" in doc.text
    assert "<!--" not in doc.text  # markitdown's slide markers are dropped


def test_broken_office_files_are_classified(tmp_path: Path) -> None:
    notzip = tmp_path / "broken.docx"
    notzip.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(ParseError) as err:
        parse_document(notzip)
    assert err.value.kind == "corrupt"
    # password-protected OOXML is an OLE compound file holding an "EncryptedPackage" stream
    ole = tmp_path / "locked.pptx"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500 + "EncryptedPackage".encode("utf-16-le"))
    with pytest.raises(ParseError) as err:
        parse_document(ole)
    assert err.value.kind == "encrypted"
    # a zip that is not a Word document
    import zipfile

    with zipfile.ZipFile(tmp_path / "other.docx", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "other.docx")
    assert err.value.kind == "corrupt" and "DOCX" in err.value.reason


# ---------------------------------------------------------------- HTML and saved pages


def test_html_drops_site_chrome_and_keeps_headings(tmp_path: Path) -> None:
    doc = parse_document(write_html(tmp_path / "r.html", "Release Notes", SECTIONS))
    assert doc.parser == "html" and doc.title == "Release Notes"
    assert doc.text.startswith("# Release Notes\n\n## Deployment\n\nHold the magnetic key")
    for chrome in ("tracking code", "Products", "Copyright", "font-family", "Brightwater Labs"):
        assert chrome not in doc.text


def test_html_without_main_keeps_article_header_and_strips_links(tmp_path: Path) -> None:
    page = (
        "<html><head><title>T</title><script>var x = 'tracker';</script></head><body>"
        "<div role='navigation'>Menu Home About</div><header>Site banner</header>"
        "<article><header><h1>Water Report</h1></header><p>Oxygen was <a href='/x'>above 8 mg/L</a>"
        " <img src='a.png' alt='chart'>all week.</p><footer>Tags: lake</footer></article>"
        "<footer>Legal</footer></body></html>"
    )
    (tmp_path / "p.htm").write_text(page, encoding="utf-8")
    text = parse_document(tmp_path / "p.htm").text
    assert text == "# Water Report\n\nOxygen was above 8 mg/L chartall week."


def test_saved_web_page_mhtml(tmp_path: Path) -> None:
    msg = MIMEMultipart("related")
    msg["Subject"] = "Saved page"
    html = (
        "<html><head><title>Saved</title></head>"
        "<body><nav>skip me</nav><h1>Kept</h1><p>Caf\u00e9 text.</p></body></html>"
    )
    msg.attach(MIMEText(html, "html", "utf-8"))
    msg.attach(MIMEText("body { color: red }", "css"))
    (tmp_path / "page.mhtml").write_bytes(msg.as_bytes())
    doc = parse_document(tmp_path / "page.mhtml")
    assert doc.text == "# Kept\n\nCaf\u00e9 text." and doc.title == "Saved"


# ---------------------------------------------------------------- text formats


def test_markdown_setext_front_matter_and_fences(tmp_path: Path) -> None:
    md = (
        "---\ntitle: The Guide\n---\nGuide\n=====\n\nIntro.\n\nInstall\n-------\n\n```\ncode\n---\n```\n\n---\n\nEnd.\n"
    )
    (tmp_path / "g.md").write_text(md, encoding="utf-8")
    doc = parse_document(tmp_path / "g.md")
    assert doc.title == "The Guide"
    assert doc.text == "# Guide\n\nIntro.\n\n## Install\n\n```\ncode\n---\n```\n\n---\n\nEnd."
    plain = parse_document(write_markdown(tmp_path / "s.md", "Sample", SECTIONS))
    assert plain.title == "Sample" and plain.text.startswith("# Sample\n\n## Deployment\n\n")


def test_rst_titles_become_headings(tmp_path: Path) -> None:
    rst = (
        "=====\nGuide\n=====\n\nIntro text.\n\nInstall\n-------\n\nSteps.\n\n"
        "Linux\n~~~~~\n\nUse apt.\n\nUsage\n-------\n\nRun it.\n"
    )
    (tmp_path / "g.rst").write_text(rst, encoding="utf-8")
    doc = parse_document(tmp_path / "g.rst")
    assert doc.text == "# Guide\n\nIntro text.\n\n## Install\n\nSteps.\n\n### Linux\n\nUse apt.\n\n## Usage\n\nRun it."
    assert doc.title == "Guide"


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "utf-8-sig", "utf-16", "cp1252"],
)
def test_text_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    text = "Le café crème est servi à la française. Déjà vu: la naïve façade.\r\nSecond line."
    (tmp_path / "t.txt").write_bytes(text.encode(encoding))
    doc = parse_document(tmp_path / "t.txt")
    assert doc.text == text.replace("\r\n", "\n") and doc.title is None and doc.parser == "text"


def test_cyrillic_legacy_encoding(tmp_path: Path) -> None:
    text = "Привет, это тестовый документ на русском языке."
    (tmp_path / "ru.txt").write_bytes(text.encode("cp1251"))
    assert parse_document(tmp_path / "ru.txt").text == text


def test_binary_file_named_txt_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "bin.txt")
    assert err.value.kind == "corrupt"


# ---------------------------------------------------------------- XML


def test_xml_titles_nest_as_headings(tmp_path: Path) -> None:
    xml = (
        '<?xml version="1.0"?><book xmlns="http://docbook.org/ns/docbook"><title>Buoy Book</title>'
        "<chapter><title>Setup</title><para>Unpack the <emphasis>buoy</emphasis> carefully.</para>"
        "<section><title>Mooring</title><para>Use a 25 kg anchor.</para></section></chapter>"
        "<chapter><title>Specs</title><item><name>Weight</name><value>18 kg</value></item></chapter></book>"
    )
    (tmp_path / "b.xml").write_text(xml, encoding="utf-8")
    doc = parse_document(tmp_path / "b.xml")
    assert doc.parser == "xml" and doc.title == "Buoy Book"
    assert doc.text == (
        "# Buoy Book\n\n## Setup\n\nUnpack the buoy carefully.\n\n### Mooring\n\nUse a 25 kg anchor."
        "\n\n## Specs\n\nWeight\n18 kg"
    )


def test_xml_html_like_headings_and_bad_xml(tmp_path: Path) -> None:
    (tmp_path / "h.xml").write_text("<doc><h2>Two</h2><p>Text here.</p><h1>One</h1></doc>", encoding="utf-8")
    assert parse_document(tmp_path / "h.xml").text == "## Two\n\nText here.\n\n# One"
    (tmp_path / "bad.xml").write_text("<doc><p>unclosed</doc>", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "bad.xml")
    assert err.value.kind == "corrupt" and "malformed XML" in err.value.reason
    bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    (tmp_path / "bomb.xml").write_text(bomb, encoding="utf-8")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "bomb.xml")
    assert err.value.kind == "corrupt" and "safety" in err.value.reason


# ---------------------------------------------------------------- generic failures and registry


def test_empty_file_and_whitespace_only(tmp_path: Path) -> None:
    (tmp_path / "zero.pdf").write_bytes(b"")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "zero.pdf")
    assert err.value.kind == "empty" and "0 bytes" in err.value.reason
    (tmp_path / "blank.md").write_text("\n \n\t\n", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "blank.md")
    assert err.value.kind == "empty"


def test_unsupported_extension(tmp_path: Path) -> None:
    for name in ("photo.jpg", "Makefile"):
        (tmp_path / name).write_bytes(b"data")
        with pytest.raises(ParseError) as err:
            parse_document(tmp_path / name)
        assert err.value.kind == "unsupported" and ".pdf" in err.value.reason


class _UpperParser:
    name = "upper"
    extensions = (".upper",)

    def parse(self, path: Path) -> ParsedDocument:
        return ParsedDocument(text=path.read_text().upper() + "\r\n\r\n\r\n", title=None, pages=None, parser=self.name)


class _BrokenParser:
    name = "broken"
    extensions = (".broken",)

    def parse(self, path: Path) -> ParsedDocument:
        raise RuntimeError("library exploded")


def test_registry_and_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PARSERS", dict(registry.PARSERS))
    monkeypatch.setattr(registry, "_instances", {})
    register_parser(_UpperParser)
    (tmp_path / "a.upper").write_text("hello")
    doc = parse_document(tmp_path / "a.upper")
    assert doc.text == "HELLO" and doc.parser == "upper"  # normalized after the plugin

    class _EntryPoint:
        name, value = "broken", "tests:_BrokenParser"

        def load(self) -> type:
            return _BrokenParser

    import importlib.metadata

    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [_EntryPoint()] if group == "mason.parsers" else []
    )
    assert ".broken" in registry.supported_extensions()
    (tmp_path / "x.broken").write_text("x")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "x.broken")
    assert err.value.kind == "corrupt" and "broken failed: RuntimeError: library exploded" in err.value.reason
    assert isinstance(get_parser("a.pdf"), registry.PdfiumParser)
    assert isinstance(get_parser("a.PDF", pdf_parser="markitdown"), registry.MarkitdownPdfParser)


def test_clean_markdown_and_normalize() -> None:
    md = (
        '<!-- Slide number: 1 -->\r\n# Title\nText with [a link](http://x.y/z "t") and '
        "![alt text](data:image/png;base64,AAAA).\n\n\n\nEnd.  \n"
    )
    assert clean_markdown(md) == "# Title\n\nText with a link and alt text.\n\nEnd."
    assert normalize_text("\ufeffA\x00B\r\nC\t \n\n\n\nD") == "AB\nC\n\nD"
