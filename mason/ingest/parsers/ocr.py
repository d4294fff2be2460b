"""OCR: text from scanned PDF pages and images, with RapidOCR on onnxruntime (`pip install 'mason[ocr]'`).

Why RapidOCR: it installs from PyPI with its models inside the wheel (PP-OCRv6 detection and
recognition, ~30 MB: nothing is downloaded at run time), runs on onnxruntime, which MASON already
uses, and reads English and Chinese. Tesseract was faster on a clean page on these machines
(see bench/ingest.py), but it is a system package (`apt`), not something `pip` installs.

What OCR gives is turned into the same `_Line`s as a PDF text layer (position and height of each
text line), so the PDF parser's paragraph and heading logic applies to scans too. Text read with
OCR is marked (`base.mark_ocr`): `ParsedDocument.ocr_spans` and each chunk's `ocr` flag say so.

Image files and audio/video files are refused before they are read (`precheck`) unless OCR is
on (`ocr: on`) for images: a docs folder's pictures are mostly logos, icons and diagrams whose
OCR text is noise, while a PDF without a text layer is a scan.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, mark_ocr, normalize_text, options

#: PDF pages are rendered at this resolution for OCR
RENDER_DPI = 150
#: the longest side an image is scaled down to before OCR
MAX_SIDE = 2400
INSTALL_HINT = "pip install 'mason[ocr]'"

_engine: Any = None
_engine_lock = threading.Lock()
_stats = {"pages": 0, "seconds": 0.0}


def ocr_installed() -> bool:
    """Whether the OCR engine (rapidocr + onnxruntime) can be imported (without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr", "onnxruntime"))


def ocr_enabled(mode: str | None = None) -> bool:
    """Whether scanned PDF pages are read with OCR under `mode` (default: the options in force)."""
    mode = mode or options().ocr
    return mode == "on" or (mode == "auto" and ocr_installed())


def images_enabled() -> bool:
    """Whether image files are read with OCR (`ocr: on` and the engine installed)."""
    return options().ocr == "on" and ocr_installed()


def stats() -> dict[str, float]:
    """Pages read with OCR in this process and the seconds they took (for pages/s)."""
    return dict(_stats)


def engine() -> Any:
    """The RapidOCR engine, created once per process (loading the models takes about a second).

    Raises ParseError("unsupported") when it is not installed.
    """
    global _engine
    with _engine_lock:
        if _engine is None:
            if not ocr_installed():
                raise ParseError("unsupported", f"no OCR engine installed ({INSTALL_HINT})")
            import logging

            from rapidocr import RapidOCR

            threads = max(1, min(os.cpu_count() or 1, 4))
            _engine = RapidOCR(params={
                "Global.log_level": "error",
                "Global.use_cls": False,  # 180-degree text lines are rare in scans; the classifier costs time
                "Det.limit_type": "max",
                "Det.limit_side_len": 1280,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
            })  # fmt: skip
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return _engine


def ocr_boxes(image: Any) -> list[tuple[str, float, float, float, float]]:
    """Text boxes of an RGB image (PIL or numpy): (text, left, top, right, bottom) in pixels, reading order."""
    import numpy as np

    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    started = time.perf_counter()
    result = engine()(arr)
    _stats["seconds"] += time.perf_counter() - started
    _stats["pages"] += 1
    boxes = []
    for box, text in zip(result.boxes if result.boxes is not None else [], result.txts or (), strict=False):
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        if str(text).strip():
            boxes.append((str(text).strip(), float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))))
    return _reading_order(boxes)


def _reading_order(boxes: list[tuple[str, float, float, float, float]]) -> list[tuple[str, float, float, float, float]]:
    """Boxes on the same line (overlapping vertically) joined left to right; lines top to bottom."""
    boxes = sorted(boxes, key=lambda b: (b[2] + b[4]) / 2)
    lines: list[list[tuple[str, float, float, float, float]]] = []
    for b in boxes:
        if lines:
            last = lines[-1]
            top, bottom = min(x[2] for x in last), max(x[4] for x in last)
            mid = (b[2] + b[4]) / 2
            if top <= mid <= bottom:
                last.append(b)
                continue
        lines.append([b])
    out = []
    for line in lines:
        line.sort(key=lambda b: b[1])
        out.append((" ".join(b[0] for b in line), min(b[1] for b in line), min(b[2] for b in line),
                    max(b[3] for b in line), max(b[4] for b in line)))  # fmt: skip
    return out


def ocr_pdf_page(page: Any, pdfium_lines_cls: Any) -> list[Any]:
    """OCR one pypdfium2 page into PDF-parser lines (`pdfium_lines_cls(text, size, bold, x0, x1, y)`)."""
    scale = RENDER_DPI / 72
    width, height = page.get_size()
    if max(width, height) * scale > MAX_SIDE:
        scale = MAX_SIDE / max(width, height)
    image = page.render(scale=scale).to_pil()
    lines = []
    for text, left, top, right, bottom in ocr_boxes(image):
        size = round((bottom - top) / scale * 0.75 * 2) / 2  # box height ~ 1.33 x the font size
        lines.append(pdfium_lines_cls(text, size, False, left / scale, right / scale, height - bottom / scale))
    return lines


class ImageParser:
    """Image files, read with OCR when `ocr: on` (otherwise refused before they are read)."""

    name = "ocr-image"
    extensions = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
    supported = False  # not listed among the supported formats: only with `ocr: on`

    def precheck(self, path: Path) -> None:
        """Refuse the file unless images are read with OCR. Raises ParseError("unsupported")."""
        if images_enabled():
            return
        how = "set `knowledge_source.ocr: on`" + ("" if ocr_installed() else f" and {INSTALL_HINT}")
        raise ParseError(
            "unsupported",
            f"image file: text in images is read with OCR only when asked ({how}); scanned documents saved as "
            ".pdf are read with the default `ocr: auto`",
        )

    def parse(self, path: Path) -> ParsedDocument:
        """OCR every frame of one image (multi-page TIFF). Raises ParseError (corrupt, empty, unsupported)."""
        from PIL import Image, ImageSequence, UnidentifiedImageError

        self.precheck(path)
        try:
            image = Image.open(path)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as e:
            raise ParseError("corrupt", f"cannot read image ({type(e).__name__}: {e})") from None
        blocks, frames = [], 0
        limit = options().max_document_chars
        with image:
            for frame in ImageSequence.Iterator(image):
                frames += 1
                frame = frame.convert("RGB")
                if max(frame.size) > MAX_SIDE:
                    frame.thumbnail((MAX_SIDE, MAX_SIDE))
                text = "\n".join(b[0] for b in ocr_boxes(frame))
                blocks.append(mark_ocr(text))
                if sum(map(len, blocks)) > limit:
                    break
        text = normalize_text("\n\n".join(b for b in blocks if b))
        if not text.strip():
            raise ParseError("empty", "no text found in the image by OCR")
        return ParsedDocument(text=text, title=None, pages=frames, parser=self.name, ocr_pages=frames)


_MEDIA = {
    "audio": (".mp3", ".wav", ".m4a", ".flac", ".ogg", ".oga", ".aac", ".opus", ".wma", ".aiff"),
    "video": (".mp4", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".m4v", ".mpg", ".mpeg", ".flv"),
}


class MediaParser:
    """Audio and video files: always refused with a clear reason (MASON does not transcribe)."""

    name = "media"
    extensions = _MEDIA["audio"] + _MEDIA["video"]
    supported = False

    def precheck(self, path: Path) -> None:
        """Raises ParseError("unsupported") naming the kind of media."""
        kind = "audio" if Path(path).suffix.lower() in _MEDIA["audio"] else "video"
        raise ParseError("unsupported", f"{kind} file: MASON reads text, it does not transcribe {kind}")

    def parse(self, path: Path) -> ParsedDocument:
        """Never returns: see `precheck`."""
        self.precheck(path)
        raise AssertionError("unreachable")
