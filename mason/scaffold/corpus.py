"""Writers of sample documents (PDF, DOCX, PPTX, HTML, Markdown, text) and the demo corpus.

Used by `mason init` (the quickstart's demo data), by the tests and by the benchmarks. Every
writer takes the same shape of content, a title and `sections`: a list of
(heading, [paragraph, ...]). Output is deterministic (fixed dates), so the same content always
gives the same bytes and the same sha256.

The demo corpus describes one fictional company, Brightwater Labs, and its water-quality buoy,
the AquaSense S3. All names, numbers and procedures are invented but consistent across the
documents, so questions generated from one can be checked against the others.
"""

from __future__ import annotations

import html as _html
import zipfile
from datetime import UTC
from pathlib import Path

Sections = list[tuple[str, list[str]]]

_FIXED_ZIP_DATE = (2024, 1, 1, 0, 0, 0)
_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

# ---------------------------------------------------------------- DOCX (by hand)

_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_OOXML = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

_DOCX_CONTENT_TYPES = (
    f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/word/document.xml" ContentType="{_OOXML}.document.main+xml"/>'
    f'<Override PartName="/word/styles.xml" ContentType="{_OOXML}.styles+xml"/>'
    '<Override PartName="/docProps/core.xml"'
    ' ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>'
)
_DOCX_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOC_RELS}/officeDocument" Target="word/document.xml"/>'
    f'<Relationship Id="rId2" Type="{_PKG_RELS}/metadata/core-properties" Target="docProps/core.xml"/>'
    "</Relationships>"
)
_DOCX_DOC_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOC_RELS}/styles" Target="styles.xml"/></Relationships>'
)


def _docx_style(style_id: str, name: str, size_half_points: int, bold: bool) -> str:
    # the style *name* ("heading 1") is what mammoth/markitdown map to <h1> -> "# "
    rpr = f'<w:rPr>{"<w:b/>" if bold else ""}<w:sz w:val="{size_half_points}"/></w:rPr>'
    return (
        f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/>'
        f'<w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>{rpr}</w:style>'
    )


_DOCX_STYLES = (
    f'{_XML_DECL}<w:styles xmlns:w="{_W_NS}">'
    '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/>'
    '<w:pPr><w:spacing w:after="160"/></w:pPr><w:rPr><w:sz w:val="22"/></w:rPr></w:style>'
    + _docx_style("Heading1", "heading 1", 32, True)
    + _docx_style("Heading2", "heading 2", 26, True)
    + "</w:styles>"
)


def _docx_paragraph(text: str, style: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{_html.escape(text, quote=False)}</w:t></w:r></w:p>'


def _zip_write(z: zipfile.ZipFile, name: str, data: str | bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data.encode("utf-8") if isinstance(data, str) else data)


def write_docx(path: str | Path, title: str, sections: Sections) -> Path:
    """Write a .docx by hand (zipfile + minimal WordprocessingML, no python-docx).

    The title uses style Heading1, section headings Heading2, so markitdown gives `#`/`##`.
    Returns the path written.
    """
    path = Path(path)
    body = [_docx_paragraph(title, "Heading1")]
    for heading, paragraphs in sections:
        body.append(_docx_paragraph(heading, "Heading2"))
        body.extend(_docx_paragraph(p) for p in paragraphs)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_W_NS}"><w:body>{"".join(body)}'
        '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>'
    )
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{_html.escape(title, quote=False)}</dc:title></cp:coreProperties>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        _zip_write(z, "[Content_Types].xml", _DOCX_CONTENT_TYPES)
        _zip_write(z, "_rels/.rels", _DOCX_RELS)
        _zip_write(z, "word/_rels/document.xml.rels", _DOCX_DOC_RELS)
        _zip_write(z, "word/document.xml", document)
        _zip_write(z, "word/styles.xml", _DOCX_STYLES)
        _zip_write(z, "docProps/core.xml", core)
    return path


# ---------------------------------------------------------------- PDF (fpdf2)

# the PDF core fonts are Latin-1: map the typographic characters our prose uses
_LATIN1 = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u2026": "...", "\u2022": "-", "\u2212": "-", "\u00a0": " "})  # fmt: skip


def _latin1(text: str) -> str:
    return text.translate(_LATIN1).encode("latin-1", errors="replace").decode("latin-1")


def write_pdf(
    path: str | Path,
    title: str,
    sections: Sections,
    *,
    user_password: str | None = None,
    page_numbers: bool = True,
) -> Path:
    """Write a text PDF with fpdf2: bold title and headings, wrapped paragraphs, page breaks
    when long, "Page N" footers. `user_password` encrypts it (opening needs the password).

    Returns the path written.
    """
    from datetime import datetime

    from fpdf import FPDF

    class _Pdf(FPDF):
        def footer(self) -> None:
            if page_numbers:
                self.set_y(-15)
                self.set_font("helvetica", size=8)
                self.cell(0, 10, f"Page {self.page_no()}", align="C")

    pdf = _Pdf(format="A4")
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.set_title(_latin1(title))
    pdf.set_auto_page_break(True, margin=20)
    if user_password is not None:
        pdf.set_encryption(owner_password=user_password + "-owner", user_password=user_password)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.multi_cell(0, 10, _latin1(title))
    pdf.ln(4)
    for heading, paragraphs in sections:
        pdf.set_font("helvetica", "B", 14)
        pdf.multi_cell(0, 8, _latin1(heading))
        pdf.ln(2)
        pdf.set_font("helvetica", size=11)
        for para in paragraphs:
            pdf.multi_cell(0, 6, _latin1(para))
            pdf.ln(3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


# ---------------------------------------------------------------- PPTX (python-pptx)


def write_pptx(path: str | Path, title: str, sections: Sections) -> Path:
    """Write a deck with python-pptx: a title slide, then one slide per section (heading as the
    slide title, paragraphs as body text). Returns the path written."""
    from datetime import datetime

    from pptx import Presentation

    prs = Presentation()
    prs.core_properties.title = title
    prs.core_properties.created = prs.core_properties.modified = datetime(2024, 1, 1)
    slide = prs.slides.add_slide(prs.slide_layouts[0])
    slide.shapes.title.text = title
    for heading, paragraphs in sections:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = heading
        frame = slide.placeholders[1].text_frame
        frame.text = paragraphs[0] if paragraphs else ""
        for para in paragraphs[1:]:
            frame.add_paragraph().text = para
    import io

    buf = io.BytesIO()
    prs.save(buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # python-pptx stamps zip entries with the current time: re-pack with a fixed date
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            _zip_write(dst, item.filename, src.read(item.filename))
    return path


# ---------------------------------------------------------------- HTML, Markdown, text


def write_html(path: str | Path, title: str, sections: Sections, *, site_chrome: bool = True) -> Path:
    """Write an HTML page. With `site_chrome`, it looks like a saved web page: a script, a style
    sheet, a navigation bar, a page header and a footer around the `<main>` content (the parser
    must drop them). Returns the path written."""
    esc = _html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    for heading, paragraphs in sections:
        body.append(f"<h2>{esc(heading)}</h2>")
        body.extend(f"<p>{esc(p)}</p>" for p in paragraphs)
    main = "<main>\n" + "\n".join(body) + "\n</main>"
    if site_chrome:
        page = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>\n'
            "<style>body { font-family: sans-serif; } nav a { margin: 0 1em; }</style>\n"
            "<script>window.analytics = { track: function () { return 'tracking code'; } };</script>\n"
            '</head><body>\n<header><div class="logo">Brightwater Labs</div>\n'
            '<nav><a href="/">Home</a><a href="/products">Products</a><a href="/support">Support</a></nav>'
            f"</header>\n{main}\n<footer>Copyright 2024 Brightwater Labs. All rights reserved. "
            '<a href="/privacy">Privacy</a></footer>\n</body></html>\n'
        )
    else:
        page = f"<!DOCTYPE html>\n<html><head><title>{esc(title)}</title></head><body>\n{main}\n</body></html>\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_markdown(path: str | Path, title: str, sections: Sections) -> Path:
    """Write Markdown: `# title`, `## heading` per section, blank-line paragraphs."""
    parts = [f"# {title}"]
    for heading, paragraphs in sections:
        parts.append(f"## {heading}")
        parts.extend(paragraphs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def write_text(path: str | Path, title: str, sections: Sections) -> Path:
    """Write plain text: the title, then each heading on its own line above its paragraphs."""
    parts = [title]
    for heading, paragraphs in sections:
        parts.append(heading)
        parts.extend(paragraphs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


_WRITERS = {
    ".pdf": write_pdf,
    ".docx": write_docx,
    ".pptx": write_pptx,
    ".html": write_html,
    ".md": write_markdown,
    ".txt": write_text,
}


def write_sample_corpus(folder: str | Path) -> list[Path]:
    """Write the Brightwater Labs demo corpus (5 documents: PDF, DOCX, Markdown, HTML, text).

    Returns the paths written, sorted. Existing files of the same names are overwritten.
    """
    folder = Path(folder)
    paths = []
    for name, title, sections in CORPUS:
        paths.append(_WRITERS[Path(name).suffix](folder / name, title, sections))
    return sorted(paths)


# ---------------------------------------------------------------- the demo corpus

_MANUAL: Sections = [
    (
        "Overview",
        [
            "The AquaSense S3 is a solar-powered buoy that measures water quality in lakes, reservoirs and slow "
            "rivers. It records five parameters: water temperature, dissolved oxygen, pH, turbidity and specific "
            "conductivity. Measurements are taken every 15 minutes by default and sent to AquaSense Cloud over "
            "LTE-M, with NB-IoT as the fallback network.",
            "The buoy is designed to stay in the water for a full season without a visit. A 20 W solar panel "
            "charges a 12 V, 40 Ah lithium iron phosphate battery, which keeps the S3 running for 21 days without "
            "any sun. The sensor head hangs 1.2 metres below the surface on a stainless steel cage.",
        ],
    ),
    (
        "What is in the box",
        [
            "Each S3 ships with the buoy hull and solar panel, the sensor cage with the five sensors installed, "
            "a 10 metre mooring line with a swivel shackle, a calibration kit with pH 4, 7 and 10 buffer "
            "sachets, a magnetic activation key and a printed quick start card. Anchors are not included because "
            "the right weight depends on the current at the site; Brightwater Labs recommends at least 25 kg.",
        ],
    ),
    (
        "Technical specifications",
        [
            "Dissolved oxygen is measured with an optical luminescence sensor with a range of 0 to 20 mg/L and an "
            "accuracy of plus or minus 0.1 mg/L. The pH electrode covers pH 0 to 14 with an accuracy of plus or "
            "minus 0.1 pH. Turbidity is measured by 90 degree infrared scattering from 0 to 1000 NTU. "
            "Conductivity ranges from 0 to 100 mS/cm and temperature from -5 to 50 degrees Celsius.",
            "The hull is 62 cm in diameter and the complete buoy weighs 18 kg. It is rated IP68 and survives "
            "waves up to 1.5 metres. A central wiper brush cleans the optical windows before every measurement, "
            "which keeps biofouling under control for about three months in warm water.",
        ],
    ),
    (
        "Deploying the buoy",
        [
            "Before deployment, hold the magnetic key against the marked spot on the lid for five seconds. The "
            "status light blinks blue while the S3 searches for a network and turns solid green once it has "
            "registered with AquaSense Cloud. Do not deploy a buoy whose light blinks red: it has no network "
            "coverage at that location.",
            "Attach the mooring line to the swivel shackle under the hull, never to the sensor cage. Choose a "
            "spot at least 2 metres deep so the sensor head never touches the bottom. The first readings appear "
            "in the cloud dashboard within 20 minutes of activation.",
        ],
    ),
    (
        "Calibration",
        [
            "Calibrate the pH sensor every 30 days. Rinse the electrode with clean water, then run a three-point "
            "calibration with the pH 7 buffer first, followed by pH 4 and pH 10. The S3 accepts a calibration only "
            "when the slope is between 92 and 102 percent; outside that range the electrode should be replaced.",
            "The optical dissolved oxygen sensor needs a one-point calibration in water-saturated air every 90 "
            "days. Conductivity and turbidity are factory calibrated and only need a check once a year with a "
            "standard solution. Every calibration is logged with its date in AquaSense Cloud.",
        ],
    ),
    (
        "Maintenance schedule",
        [
            "Clean the sensor cage and the wiper brush every 30 days during the warm season, at the same visit "
            "as the pH calibration. Replace the wiper brush every six months and the pH electrode every twelve "
            "months. The dissolved oxygen sensing cap lasts two years. The battery is rated for 2,000 full cycles "
            "and normally outlives the buoy.",
        ],
    ),
    (
        "Troubleshooting",
        [
            "If no data has arrived for more than two hours, check the network indicator in the dashboard "
            "first. A buoy that loses its network stores up to 30 days of readings and uploads them when the "
            "connection comes back. Sudden jumps in turbidity are usually caused by a stuck wiper brush; "
            "a drifting pH reading that does not settle after cleaning means the electrode needs calibration.",
        ],
    ),
]

_SAFETY: Sections = [
    (
        "Purpose and scope",
        [
            "This policy applies to every Brightwater Labs employee and contractor who installs, services or "
            "retrieves AquaSense buoys. It sets the minimum rules for work on or near water. Regional teams may "
            "add stricter rules but may not relax these.",
        ],
    ),
    (
        "Boat operations",
        [
            "Field work from a boat always requires two people: one operates the boat while the other handles "
            "the buoy. The boat operator must hold a valid powerboat licence and must have completed the "
            "Brightwater Labs boat handling course within the last three years.",
            "Buoys are lifted with the davit arm mounted on the service boats, never by hand, because a buoy "
            "with its sensor cage weighs 18 kg and becomes much heavier when the cage is full of mud.",
        ],
    ),
    (
        "Personal protective equipment",
        [
            "Everyone on a boat wears a 150 newton automatic life jacket at all times, including in calm water. "
            "Nitrile gloves are required when handling sensors or calibration buffers, and safety glasses are "
            "required when cleaning the sensor cage with the brush kit.",
        ],
    ),
    (
        "Lone working and check-ins",
        [
            "Shore-based work alone is allowed only within mobile coverage. A lone worker checks in with the "
            "regional duty phone every two hours. If a check-in is missed by more than 30 minutes, the duty "
            "manager calls the worker and, after a second missed call, starts the emergency procedure.",
        ],
    ),
    (
        "Weather limits",
        [
            "No boat work starts when sustained wind speed exceeds 25 km/h, when waves are higher than 0.5 "
            "metres, or when thunder has been heard within the last 30 minutes. Work stops immediately if "
            "lightning is seen. Ice on the water is a no-go condition for all boat work.",
        ],
    ),
    (
        "Incident reporting",
        [
            "Every incident and near miss is reported in the SafetyNet app within 24 hours. Injuries that need "
            "medical treatment are also reported by phone to the health and safety manager on the same day. "
            "Reports are reviewed every month by the safety committee.",
        ],
    ),
]

_API: Sections = [
    (
        "Authentication",
        [
            "Every request to the AquaSense Cloud API carries an API key in the `Authorization` header, as "
            "`Authorization: Bearer <key>`. Keys are created under Settings, API keys in the dashboard. A key is "
            "scoped to one organisation and can be read-only or read-write. Keys expire after 365 days.",
        ],
    ),
    (
        "Listing stations",
        [
            "A station is one deployed buoy. `GET /v2/stations` returns the stations of your organisation with "
            "their serial number, name, coordinates, battery level and the time of the last reading. Results "
            "are paginated with 50 stations per page; follow the `next` link to get the following page.",
        ],
    ),
    (
        "Reading measurements",
        [
            "`GET /v2/stations/{id}/measurements` returns readings between the `from` and `to` timestamps, "
            "given in ISO 8601 UTC. Each reading holds the timestamp and the five parameters: `temperature_c`, "
            "`do_mg_l`, `ph`, `turbidity_ntu` and `conductivity_ms_cm`. One request returns at most 10,000 "
            "readings, about 104 days of data at the default 15 minute interval.",
            "Add `format=csv` to receive comma-separated values instead of JSON, which is convenient for spreadsheets.",
        ],
    ),
    (
        "Alerts and webhooks",
        [
            "Alert rules compare a parameter with a threshold, for example dissolved oxygen below 4 mg/L for "
            "more than 30 minutes. When a rule fires, AquaSense Cloud sends a POST request to your webhook URL "
            "with the station, the rule and the reading. Webhook payloads are signed with HMAC-SHA256 in the "
            "`X-AquaSense-Signature` header; reject any request whose signature does not match.",
        ],
    ),
    (
        "Rate limits",
        [
            "Read-only keys may make 600 requests per minute and read-write keys 120 per minute. A request over "
            "the limit receives HTTP status 429 with a `Retry-After` header giving the number of seconds to "
            "wait.",
        ],
    ),
    (
        "Errors",
        [
            "Errors use standard HTTP status codes with a JSON body holding `code` and `message`. Status 401 "
            "means the key is missing or expired, 403 means the key has no access to that station, and 404 means "
            "the station does not exist.",
        ],
    ),
]

_RELEASE: Sections = [
    (
        "Highlights",
        [
            "Firmware 3.2 for the AquaSense S3 was released on 4 March 2024. It reduces power use during "
            "network searches by 35 percent and adds adaptive sampling, which measures every 5 minutes instead "
            "of every 15 while a parameter is changing fast.",
        ],
    ),
    (
        "Adaptive sampling",
        [
            "Adaptive sampling is off by default. When it is enabled in the station settings, the buoy switches "
            "to 5 minute sampling if dissolved oxygen changes by more than 0.5 mg/L or turbidity by more than 20 "
            "NTU between two readings, and returns to the normal interval after one hour of stable values.",
        ],
    ),
    (
        "Fixes",
        [
            "The wiper brush no longer stalls at temperatures below 2 degrees Celsius. Readings stored during a "
            "network outage now upload in chronological order. The status light no longer stays blue after a "
            "successful registration on some LTE-M networks.",
        ],
    ),
    (
        "Known issues",
        [
            "On buoys deployed north of 60 degrees latitude, the first network search after a restart can take "
            "up to 40 minutes in winter. The turbidity reading may show a single spike of up to 50 NTU right "
            "after the wiper parks; firmware 3.2.1, planned for May 2024, filters it out. Until then, alert "
            "rules on turbidity should require the value to stay high for at least 30 minutes.",
        ],
    ),
    (
        "Installing the update",
        [
            "Buoys download firmware 3.2 automatically during the night between 01:00 and 04:00 local time when "
            "the battery is above 60 percent. The update takes about 12 minutes, and the buoy skips one reading "
            "while it restarts. Firmware 3.0 or later is required; buoys on older firmware must be updated to "
            "3.0 first with the service cable.",
        ],
    ),
]

_FAQ: Sections = [
    (
        "How long does the battery last without sun?",
        [
            "A fully charged AquaSense S3 runs for 21 days without any solar charging at the default 15 minute "
            "interval. With adaptive sampling enabled, count on about 16 days.",
        ],
    ),
    (
        "Can the S3 be used in salt water?",
        [
            "Yes. The hull and cage are made for fresh and brackish water, and the marine kit, sold separately, "
            "adds sacrificial zinc anodes for permanent use in sea water. Conductivity up to 100 mS/cm covers "
            "sea water, which is about 53 mS/cm.",
        ],
    ),
    (
        "What does the warranty cover?",
        [
            "The buoy has a three-year warranty covering the hull, electronics and battery. Sensors have a "
            "one-year warranty, and consumables such as the wiper brush and pH buffers are not covered. Keep the "
            "calibration log: a pH electrode replaced under warranty must have been calibrated at least every 30 "
            "days.",
        ],
    ),
    (
        "How do I contact support?",
        [
            "Write to support@brightwater-labs.example or call +1 555 0142 on weekdays from 8:00 to 18:00 "
            "Central European Time. Have the serial number ready; it starts with S3- and is printed under the "
            "lid and shown in the dashboard.",
        ],
    ),
    (
        "Why are there gaps in my data?",
        [
            "Short gaps of one reading usually mean the buoy restarted for a firmware update. Longer gaps mean "
            "the buoy lost its network: the readings are stored on board for up to 30 days and fill the gap "
            "automatically once the connection returns. If the gap is still there after 24 hours of good "
            "coverage, contact support with the serial number.",
        ],
    ),
    (
        "Can I export my data?",
        [
            "Yes. In the dashboard, open a station, choose Export and pick a date range; you receive a CSV file "
            "by e-mail within a few minutes. For automated exports, use the measurements endpoint of the "
            "AquaSense Cloud API with format=csv.",
        ],
    ),
    (
        "How do I move a buoy to a new site?",
        [
            "Retrieve the buoy, clean the cage, then open the station in the dashboard and choose Relocate. "
            "Enter the new coordinates before redeploying so the readings of the two sites are kept apart. "
            "No new activation with the magnetic key is needed.",
        ],
    ),
]

CORPUS: list[tuple[str, str, Sections]] = [
    ("aquasense-s3-manual.pdf", "AquaSense S3 User Manual", _MANUAL),
    ("field-safety-policy.docx", "Brightwater Labs Field Safety Policy", _SAFETY),
    ("cloud-api-quickstart.md", "AquaSense Cloud API Quickstart", _API),
    ("firmware-3.2-release-notes.html", "AquaSense S3 Firmware 3.2 Release Notes", _RELEASE),
    ("support-faq.txt", "AquaSense Support FAQ", _FAQ),
]
"""The demo corpus: (file name, title, sections) per document."""
