"""More formats: spreadsheets, e-books, notebooks, JSON, Outlook mail, OpenDocument, RTF, media,
and tables in DOCX and PDF. Every file is built by the test itself."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from mason.ingest.parsers import ParseError, ParseOptions, get_parser, parse_document, supported_extensions, using_options
from tests.helpers.cfb import write_msg


# ---------------------------------------------------------------- spreadsheets


def test_xlsx_sheets_become_sections_with_markdown_tables(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Parts"
    ws.append(["Part", "Interval", "Cost (EUR)"])
    ws.append(["pH sensor", "30 days", 12.5])
    ws.append(["Battery | pack", "400 cycles", 80])
    ws.append([None, None, None])  # empty rows are dropped
    prices = wb.create_sheet("Prices")
    prices.append(["Model", "Price"])
    prices.append(["S3", 1999.0])
    wb.create_sheet("Empty")
    wb.save(tmp_path / "book.xlsx")
    doc = parse_document(tmp_path / "book.xlsx")
    assert doc.parser == "xlsx" and doc.pages == 3
    assert doc.text == (
        "## Parts\n\n| Part | Interval | Cost (EUR) |\n| --- | --- | --- |\n| pH sensor | 30 days | 12.5 |\n"
        "| Battery \\| pack | 400 cycles | 80 |\n\n## Prices\n\n| Model | Price |\n| --- | --- |\n| S3 | 1999 |"
    )


def test_huge_sheet_is_capped_with_a_warning_and_long_tables_repeat_their_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Log"
    ws.append(["Day", "Reading"])
    for day in range(1, 401):
        ws.append([f"day {day}", day * 3])
    wb.save(tmp_path / "log.xlsx")
    with using_options(ParseOptions(max_sheet_rows=101)):
        text = parse_document(tmp_path / "log.xlsx").text
    assert "| day 100 | 300 |" in text and "day 101" not in text
    assert "300 rows past the first 101" in capsys.readouterr().err
    groups = text.split("\n\n")[1:]
    assert len(groups) > 1 and all(g.startswith("| Day | Reading |\n| --- | --- |\n") for g in groups)


def test_csv_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name;depth_m;note\nBuoy A;12,5;north\nBuoy B;30;\n", encoding="cp1252")
    doc = parse_document(tmp_path / "a.csv")
    assert doc.parser == "csv"
    assert doc.text == "| name | depth_m | note |\n| --- | --- | --- |\n| Buoy A | 12,5 | north |\n| Buoy B | 30 |  |"
    (tmp_path / "b.tsv").write_text("k\tv\ncafé\t1\n", encoding="utf-8")
    assert parse_document(tmp_path / "b.tsv").text == "| k | v |\n| --- | --- |\n| café | 1 |"
    (tmp_path / "bin.csv").write_bytes(b"\0\1\2" * 100)
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "bin.csv")
    assert err.value.kind == "corrupt"


def test_broken_spreadsheets_are_classified(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"not a zip")
    (tmp_path / "y.xls").write_bytes(b"not a workbook at all, just text" * 20)
    for name in ("x.xlsx", "y.xls"):
        with pytest.raises(ParseError) as err:
            parse_document(tmp_path / name)
        assert err.value.kind == "corrupt", name


# ---------------------------------------------------------------- e-books


def _epub(path: Path, chapters: list[tuple[str, str, str]], *, nav: bool = True) -> Path:
    """chapters: (file, toc title, xhtml body)."""
    manifest = "".join(f'<item id="c{i}" href="text/{f}" media-type="application/xhtml+xml"/>' for i, (f, _, _) in enumerate(chapters))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    nav_item = '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>' if nav else ""
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Buoy Book</dc:title></metadata>'
        f"<manifest>{nav_item}{manifest}</manifest><spine>{spine}</spine></package>"
    )
    links = "".join(f'<li><a href="text/{f}">{t}</a></li>' for f, t, _ in chapters)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", (
            '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"))  # fmt: skip
        z.writestr("OEBPS/content.opf", opf)
        if nav:
            z.writestr("OEBPS/nav.xhtml", f'<html xmlns="http://www.w3.org/1999/xhtml"><body><nav><ol>{links}</ol></nav></body></html>')
        for f, _, body in chapters:
            z.writestr(f"OEBPS/text/{f}", f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>')
    return path


def test_epub_chapters_in_spine_order_each_a_section(tmp_path: Path) -> None:
    path = _epub(tmp_path / "b.epub", [
        ("one.xhtml", "Mooring", "<h1>Mooring</h1><p>Use a 25 kg anchor.</p>"),
        ("two.xhtml", "Sensors", "<p>Calibrate the pH sensor monthly.</p>"),  # no heading: the TOC names it
    ])  # fmt: skip
    doc = parse_document(path)
    assert doc.parser == "epub" and doc.title == "The Buoy Book" and doc.pages == 2
    assert doc.text == "# Mooring\n\nUse a 25 kg anchor.\n\n# Sensors\n\nCalibrate the pH sensor monthly."


def test_epub_without_package_is_corrupt(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.epub", "w") as z:
        z.writestr("mimetype", "application/epub+zip")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "x.epub")
    assert err.value.kind == "corrupt" and "EPUB" in err.value.reason


# ---------------------------------------------------------------- notebooks and JSON


def _notebook() -> dict:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Tide analysis\n", "\n", "We fit the tides."]},
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "import numpy as np\nprint(np.pi)",
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["3.141592653589793\n"]},
                         {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}]},
            {"cell_type": "raw", "metadata": {}, "source": "raw text"},
        ],
    }  # fmt: skip


def test_notebook_markdown_and_code_cells_outputs_optional(tmp_path: Path) -> None:
    (tmp_path / "n.ipynb").write_text(json.dumps(_notebook()), encoding="utf-8")
    doc = parse_document(tmp_path / "n.ipynb")
    assert doc.parser == "ipynb" and doc.title == "Tide analysis"
    assert doc.text == (
        "# Tide analysis\n\nWe fit the tides.\n\n```python\nimport numpy as np\nprint(np.pi)\n```\n\n```\nraw text\n```"
    )
    with using_options(ParseOptions(notebook_outputs=True)):
        text = parse_document(tmp_path / "n.ipynb").text
    assert "```text\n3.141592653589793\n```" in text and "```text\n<Figure>\n```" in text and "iVBOR" not in text
    (tmp_path / "bad.ipynb").write_text("{not json", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "bad.ipynb")
    assert err.value.kind == "corrupt"


def test_json_rendered_readably(tmp_path: Path) -> None:
    data = {
        "product": "AquaSense S3",
        "warranty_years": 2,
        "specs": {"weight_kg": 18, "battery": {"cells": 4, "chemistry": "LiFePO4"}},
        "models": [{"name": "S3", "depth_m": 50}, {"name": "S3 Pro", "depth_m": 200}],
        "tags": ["buoy", "water"],
        "faq": [{"q": "How often to calibrate?", "a": "Every 30 days, with the pH 7 buffer first and then pH 4."}],
    }
    (tmp_path / "p.json").write_text(json.dumps(data), encoding="utf-8")
    text = parse_document(tmp_path / "p.json").text
    assert text == (
        'product: AquaSense S3\nwarranty_years: 2\ntags: ["buoy", "water"]\n\n'
        '## specs\n\nweight_kg: 18\nbattery: {"cells": 4, "chemistry": "LiFePO4"}\n\n'
        "## models\n\n| name | depth_m |\n| --- | --- |\n| S3 | 50 |\n| S3 Pro | 200 |\n\n"
        "## faq\n\nq: How often to calibrate?\na: Every 30 days, with the pH 7 buffer first and then pH 4."
    )
    lines = [{"question": "Max depth?", "answer": "50 m for the S3."}, {"question": "Colour?", "answer": "Yellow."}]
    (tmp_path / "faq.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n", encoding="utf-8")
    assert parse_document(tmp_path / "faq.jsonl").text == (
        "| question | answer |\n| --- | --- |\n| Max depth? | 50 m for the S3. |\n| Colour? | Yellow. |"
    )


# ---------------------------------------------------------------- mail, OpenDocument, RTF


def test_outlook_msg(tmp_path: Path) -> None:
    (tmp_path / "m.msg").write_bytes(write_msg(
        "Pump maintenance on Friday", "ops@example.org", "Field Team",
        "Hello team,\r\n\r\nThe pump at station 4 is serviced on Friday at 9:00.\r\n\r\nRegards",
    ))  # fmt: skip
    doc = parse_document(tmp_path / "m.msg")
    assert doc.parser == "msg" and doc.title == "Pump maintenance on Friday"
    assert doc.text == (
        "# Pump maintenance on Friday\n\n**From:** ops@example.org\n**To:** Field Team\n\n"
        "Hello team,\n\nThe pump at station 4 is serviced on Friday at 9:00.\n\nRegards"
    )
    (tmp_path / "x.msg").write_bytes(b"plain text, not OLE")
    with pytest.raises(ParseError) as err:
        parse_document(tmp_path / "x.msg")
    assert err.value.kind == "corrupt"


_ODF = 'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'


def _odf(path: Path, body: str, mimetype: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", mimetype)
        z.writestr("content.xml", f'<?xml version="1.0"?><office:document-content {_ODF}><office:body>{body}</office:body></office:document-content>')
        z.writestr("META-INF/manifest.xml", "<manifest/>")
    return path


def test_odt_headings_lists_and_tables(tmp_path: Path) -> None:
    body = (
        '<office:text><text:h text:outline-level="1">Station Guide</text:h>'
        "<text:p>Open the lid<text:s text:c=\"2\"/>carefully.<text:note><text:note-body><text:p>a footnote</text:p></text:note-body></text:note></text:p>"
        '<text:h text:outline-level="2">Checklist</text:h>'
        "<text:list><text:list-item><text:p>Check the seal</text:p></text:list-item><text:list-item><text:p>Log the reading</text:p></text:list-item></text:list>"
        "<table:table table:name=\"T1\"><table:table-row><table:table-cell><text:p>Item</text:p></table:table-cell><table:table-cell><text:p>Qty</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>Gasket</text:p></table:table-cell><table:table-cell><text:p>2</text:p></table:table-cell></table:table-row></table:table>"
        "</office:text>"
    )
    doc = parse_document(_odf(tmp_path / "g.odt", body, "application/vnd.oasis.opendocument.text"))
    assert doc.parser == "opendocument" and doc.title == "Station Guide"
    assert doc.text == (
        "# Station Guide\n\nOpen the lid  carefully.\n\n## Checklist\n\n- Check the seal\n\n- Log the reading\n\n"
        "| Item | Qty |\n| --- | --- |\n| Gasket | 2 |"
    )


def test_ods_sheets_with_repeated_cells(tmp_path: Path) -> None:
    body = (
        '<office:spreadsheet><table:table table:name="Stock">'
        "<table:table-row><table:table-cell><text:p>Item</text:p></table:table-cell><table:table-cell><text:p>Qty</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>Seal</text:p></table:table-cell><table:table-cell><text:p>4</text:p></table:table-cell>"
        '<table:table-cell table:number-columns-repeated="16000"/></table:table-row>'
        '<table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        "</table:table></office:spreadsheet>"
    )
    doc = parse_document(_odf(tmp_path / "s.ods", body, "application/vnd.oasis.opendocument.spreadsheet"))
    assert doc.text == "## Stock\n\n| Item | Qty |\n| --- | --- |\n| Seal | 4 |"


def test_rtf(tmp_path: Path) -> None:
    rtf = r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Caf\'e9 opens at 8.\par Second paragraph.\par}"
    (tmp_path / "r.rtf").write_text(rtf, encoding="ascii")
    doc = parse_document(tmp_path / "r.rtf")
    assert doc.parser == "rtf" and doc.text == "Café opens at 8.\n\nSecond paragraph."


# ---------------------------------------------------------------- media


def test_images_audio_video_are_refused_with_a_reason_before_reading(tmp_path: Path) -> None:
    for name, word in (("photo.png", "OCR"), ("talk.mp3", "audio"), ("demo.mp4", "video")):
        (tmp_path / name).write_bytes(b"data")
        with pytest.raises(ParseError) as err:
            get_parser(tmp_path / name)
        assert err.value.kind == "unsupported" and word in err.value.reason
    assert ".png" not in supported_extensions() and ".mp3" not in supported_extensions()
    for ext in (".xlsx", ".xls", ".csv", ".epub", ".ipynb", ".json", ".jsonl", ".msg", ".odt", ".rtf"):
        assert ext in supported_extensions()


# ---------------------------------------------------------------- tables in DOCX and PDF


def test_docx_tables_stay_markdown_tables(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("Handbook", level=1)
    t = d.add_table(rows=3, cols=2)
    for r, row in enumerate([("Years", "Leave days"), ("0-4", "25"), ("5+", "28 | senior")]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.save(tmp_path / "h.docx")
    text = parse_document(tmp_path / "h.docx").text
    assert "| Years | Leave days |\n| --- | --- |\n| 0-4 | 25 |\n| 5+ | 28 \\| senior |" in text
    from mason.ingest.parsers.docx import xml_markdown

    assert "| Years | Leave days |\n| --- | --- |\n| 0-4 | 25 |" in xml_markdown((tmp_path / "h.docx").read_bytes())


def test_pdf_ruled_table_becomes_markdown_table(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Maintenance schedule of the buoy. The table below lists every part.")
    pdf.ln(4)
    with pdf.table() as table:
        for cells in [("Part", "Interval", "Cost"), ("pH sensor", "30 days", "12 EUR"), ("Battery pack", "400 cycles", "80 EUR")]:
            row = table.row()
            for c in cells:
                row.cell(c)
    pdf.ln(4)
    pdf.multi_cell(0, 6, "After the table, a closing paragraph explains the warranty terms.")
    pdf.output(str(tmp_path / "t.pdf"))
    doc = parse_document(tmp_path / "t.pdf")
    assert doc.parser == "pypdfium2"
    assert doc.text == (
        "Maintenance schedule of the buoy. The table below lists every part.\n\n"
        "| Part | Interval | Cost |\n| --- | --- | --- |\n| pH sensor | 30 days | 12 EUR |\n| Battery pack | 400 cycles | 80 EUR |\n\n"
        "After the table, a closing paragraph explains the warranty terms."
    )
