"""Scanned documents for OCR tests: text drawn into an image (Pillow), and image-only PDFs (fpdf2)."""

from __future__ import annotations

import glob
from pathlib import Path


def _font(size: int):  # noqa: ANN202 - a Pillow font
    from PIL import ImageFont

    for path in sorted(glob.glob("/usr/share/fonts/**/DejaVuSans.ttf", recursive=True)):
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def scan_image(lines: list[str], *, width: int = 1240, height: int = 1754, size: int = 30):  # noqa: ANN201
    """A white page (A4 at 150 dpi) with `lines` of black text, as a Pillow image."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = _font(size)
    y = 120
    for line in lines:
        if line:
            draw.text((110, y), line, fill="black", font=font)
        y += int(size * 1.6) if line else int(size * 1.2)
    return img


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF: each page a picture of its lines, no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    for lines in pages:
        pdf.add_page()
        pdf.image(scan_image(lines), x=0, y=0, w=210, h=297)
    pdf.output(str(path))
    return path
