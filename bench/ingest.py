"""MASON's document parsers against markitdown's own conversion, in the same run.

    python bench/ingest.py [--pdfs 20] [--pages 20] [--docx 10] [--ocr-pages 8] [--web-pages 60] [--keep DIR]

Generates multi-page text PDFs (fpdf2) and DOCX files from the demo corpus's prose, then times
`mason.ingest.parsers.parse_document` and `MarkItDown().convert` on the same files. Prints
pages/s (PDF) or documents/s (DOCX) for both, the speed ratio, and how similar the two texts
are. Similarity is computed on words after the same normalization on both sides: Markdown
markers (`#`, `*`, `|`, `-` bullets) removed and whitespace collapsed (pdfminer pads words with
double spaces and breaks every line; our parser unwraps lines into paragraphs). Reported:
the word-sequence ratio (difflib) and the bag-of-words F1.

Target: >= 10x markitdown on PDFs with similarity >= 0.95.

OCR row (needs `mason[ocr]`): image-only PDFs of the same prose, read by `parse_document` (RapidOCR
with MASON's settings) against RapidOCR with its default settings on the same rendered pages;
pages/s for both, the ratio, and the word similarity of the OCR text to the prose it pictures.

Web row (needs `mason[web]`): a site of `--web-pages` linked pages served on localhost, crawled by a
web source (robots.txt, rate limit off, cache, trafilatura) against a plain loop of GET +
`trafilatura.extract` over the same URLs; pages/s for both and the ratio, then the re-run from the
crawl cache.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mason.scaffold.corpus import CORPUS, write_docx, write_pdf  # noqa: E402

_MD_MARKS = re.compile(r"(?m)^\s*(?:#{1,6}|[-*+]|\d+\.)\s+|[*_|`]|^\s*-{3,}\s*$")


def _sentences() -> list[str]:
    out = []
    for _, _, sections in CORPUS:
        for _, paragraphs in sections:
            for para in paragraphs:
                out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", para) if s.strip()]
    return out


def _make_sections(rng: random.Random, sentences: list[str], n_words: int) -> list[tuple[str, list[str]]]:
    """Sections of shuffled real sentences, about `n_words` words in all."""
    sections, words = [], 0
    while words < n_words:
        paragraphs = []
        for _ in range(rng.randint(3, 6)):
            para = " ".join(rng.sample(sentences, rng.randint(3, 7)))
            paragraphs.append(para)
            words += len(para.split())
        heading = " ".join(rng.choice(sentences).split()[: rng.randint(2, 5)]).rstrip(".,;:")
        sections.append((f"{len(sections) + 1}. {heading}", paragraphs))
    return sections


def generate(folder: Path, n_pdfs: int, pages: int, n_docx: int) -> tuple[list[Path], list[Path]]:
    rng = random.Random(1234)
    sentences = _sentences()
    pdfs, docxs = [], []
    for i in range(n_pdfs):
        # ~600 words fill one A4 page at 11 pt with our margins and spacing
        sections = _make_sections(rng, sentences, 600 * pages)
        pdfs.append(write_pdf(folder / f"report-{i:02d}.pdf", f"Field Report {i}", sections))
    for i in range(n_docx):
        sections = _make_sections(rng, sentences, 2500)
        docxs.append(write_docx(folder / f"policy-{i:02d}.docx", f"Policy {i}", sections))
    return pdfs, docxs


def _words(text: str) -> list[str]:
    return _MD_MARKS.sub(" ", text).split()


def similarity(a: str, b: str) -> tuple[float, float]:
    """(word-sequence ratio, bag-of-words F1) of two texts after normalization."""
    wa, wb = _words(a), _words(b)
    ratio = SequenceMatcher(None, wa, wb, autojunk=False).ratio()
    ca, cb = Counter(wa), Counter(wb)
    common = sum((ca & cb).values())
    f1 = 2 * common / max(len(wa) + len(wb), 1)
    return ratio, f1


def _time_all(fn, paths: list[Path]) -> tuple[float, list[str]]:
    texts = []
    start = time.perf_counter()
    for p in paths:
        texts.append(fn(p))
    return time.perf_counter() - start, texts


def _or_failure(fn, failures: list[str]):  # noqa: ANN001, ANN202
    def wrapped(p: Path) -> str:
        try:
            return fn(p)
        except Exception as e:  # markitdown 0.1.9's DOCX converter fails under lxml 6.2 (see parsers/docx.py)
            failures.append(f"{p.name}: {type(e).__name__}")
            return ""

    return wrapped


def bench(name: str, paths: list[Path], mason_fn, markitdown_fn, units: int, unit: str) -> None:
    failures: list[str] = []
    t_mason, ours = _time_all(mason_fn, paths)
    t_md, theirs = _time_all(_or_failure(markitdown_fn, failures), paths)
    if failures:
        print(f"\n{name}: markitdown failed on {len(failures)} of {len(paths)} files ({failures[0]}); its time counts the failures")
    sims = [similarity(a, b) for a, b in zip(ours, theirs)]
    ratio = statistics.mean(s[0] for s in sims)
    f1 = statistics.mean(s[1] for s in sims)
    print(f"\n{name}: {len(paths)} files, {units} {unit}")
    print(f"  mason      {t_mason:8.2f} s  {units / t_mason:9.1f} {unit}/s")
    print(f"  markitdown {t_md:8.2f} s  {units / t_md:9.1f} {unit}/s")
    print(f"  speed-up   {t_md / t_mason:8.1f}x")
    print(f"  similarity word-sequence {ratio:.4f} (min {min(s[0] for s in sims):.4f}), bag-of-words F1 {f1:.4f}")


def _scan(lines: list[str]):  # noqa: ANN202 - a Pillow image of a page with `lines` (A4, 150 dpi)
    import glob

    from PIL import Image, ImageDraw, ImageFont

    fonts = sorted(glob.glob("/usr/share/fonts/**/DejaVuSans.ttf", recursive=True))
    font = ImageFont.truetype(fonts[0], 26) if fonts else ImageFont.load_default(size=26)
    img = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        draw.text((100, 100 + 42 * k), line, fill="black", font=font)
    return img


def bench_ocr(folder: Path, n_pages: int) -> None:
    """OCR pages/s: MASON (parse_document on image-only PDFs) vs RapidOCR's default settings."""
    import textwrap

    from fpdf import FPDF

    from mason.ingest.parsers import parse_document
    from mason.ingest.parsers.ocr import ocr_installed

    if not ocr_installed():
        print("\nOCR: skipped (pip install 'mason[ocr]')")
        return
    rng = random.Random(99)
    sentences = _sentences()
    pages, texts = [], []
    for _ in range(n_pages):
        prose = " ".join(rng.sample(sentences, 14))
        lines = textwrap.wrap(prose, 70)[:36]
        pages.append(_scan(lines))
        texts.append(" ".join(lines))
    pdf = FPDF()
    for img in pages:
        pdf.add_page()
        pdf.image(img, x=0, y=0, w=210, h=297)
    path = folder / "scanned.pdf"
    pdf.output(str(path))
    parse_document(scanned := path)  # warm: model load, imports (not counted)
    t0 = time.perf_counter()
    ours = parse_document(scanned).text
    t_mason = time.perf_counter() - t0
    from rapidocr import RapidOCR
    import numpy as np

    stock = RapidOCR(params={"Global.log_level": "error"})
    stock(np.asarray(pages[0]))
    t0 = time.perf_counter()
    theirs = [" ".join(stock(np.asarray(img)).txts or ()) for img in pages]
    t_stock = time.perf_counter() - t0
    print(f"\nOCR: {n_pages} image-only A4 pages at 150 dpi, ~36 lines each")
    print(f"  mason (RapidOCR, tuned)   {t_mason:8.2f} s  {n_pages / t_mason:9.2f} pages/s")
    print(f"  RapidOCR defaults         {t_stock:8.2f} s  {n_pages / t_stock:9.2f} pages/s")
    print(f"  speed-up   {t_stock / t_mason:8.2f}x")
    truth = " ".join(texts)
    print(f"  similarity to the pictured prose: mason {similarity(ours, truth)[1]:.4f}, "
          f"defaults {similarity(' '.join(theirs), truth)[1]:.4f} (bag-of-words F1)")


def bench_web(n_pages: int) -> None:
    """Web pages/s: a web source's crawl + extraction vs a plain GET + trafilatura loop, same local site."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mason.ingest.web import web_installed

    if not web_installed():
        print("\nweb: skipped (pip install 'mason[web]')")
        return
    rng = random.Random(7)
    sentences = _sentences()
    pages = {}
    for i in range(n_pages):
        body = "".join(f"<p>{' '.join(rng.sample(sentences, 5))}</p>" for _ in range(6))
        links = "".join(f'<a href="/p{j}.html">page {j}</a> ' for j in (i + 1, i + 2) if j < n_pages)
        pages[f"/p{i}.html"] = (f"<html><head><title>Page {i}</title></head><body><nav>{links}</nav>"
                                f"<main><h1>Page {i}</h1>{body}</main><footer>footer</footer></body></html>").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path, b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/plain" if self.path == "/robots.txt" else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        import httpx2
        import trafilatura

        from mason.ingest.config import IngestConfig
        from mason.ingest.stage import ingest_documents

        cfg = IngestConfig.model_validate({
            "type": "web", "urls": [base + "/p0.html"], "crawl": {"max_depth": n_pages, "max_pages": n_pages},
            "requests_per_second": 10_000,
        })  # fmt: skip
        cache = Path(tempfile.mkdtemp(prefix="mason-bench-web-"))
        t0 = time.perf_counter()
        result = ingest_documents(cfg, cache, cache / "out", cache_dir=cache / "cache", show_progress=False)
        t_mason = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest_documents(cfg, cache, cache / "out2", cache_dir=cache / "cache", show_progress=False)
        t_cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        with httpx2.Client() as client:
            for path in pages:
                trafilatura.extract(client.get(base + path).content, output_format="markdown")
        t_plain = time.perf_counter() - t0
        n = result.counts["web_pages"]
        print(f"\nweb: a {n_pages}-page linked site on localhost (mason crawled {n}, {again.counts['from_cache']} cached on re-run)")
        print(f"  mason web source          {t_mason:8.2f} s  {n / t_mason:9.1f} pages/s  (crawl + extract + chunk + write)")
        print(f"  GET + trafilatura loop    {t_plain:8.2f} s  {n_pages / t_plain:9.1f} pages/s")
        print(f"  ratio      {t_plain / t_mason * n / n_pages:8.2f}x")
        print(f"  mason re-run from the crawl cache {t_cached:6.2f} s  {n / t_cached:9.1f} pages/s (no request)")
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=int, default=20)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--docx", type=int, default=10)
    parser.add_argument("--ocr-pages", type=int, default=8, help="scanned pages for the OCR row (0: skip)")
    parser.add_argument("--web-pages", type=int, default=60, help="pages of the local site for the web row (0: skip)")
    parser.add_argument("--keep", type=Path, default=None, help="write the documents here and keep them")
    args = parser.parse_args()

    from markitdown import MarkItDown

    from mason.ingest.parsers import parse_document

    folder = args.keep or Path(tempfile.mkdtemp(prefix="mason-bench-ingest-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pdfs, docxs = generate(folder, args.pdfs, args.pages, args.docx)
    print(f"generated {len(pdfs)} PDFs and {len(docxs)} DOCX in {time.perf_counter() - t0:.1f} s -> {folder}")

    t0 = time.perf_counter()
    md = MarkItDown()
    print(f"MarkItDown() construction: {time.perf_counter() - t0:.2f} s (not counted below)")
    # warm both paths once (imports, lazy model loads) so the timings compare steady states
    parse_document(pdfs[0])
    md.convert(str(pdfs[0]))

    n_pages = sum(parse_document(p).pages or 0 for p in pdfs)
    bench(
        "PDF", pdfs,
        lambda p: parse_document(p).text,
        lambda p: md.convert(str(p)).markdown,
        n_pages, "pages",
    )  # fmt: skip
    if docxs:
        bench(
            "DOCX", docxs,
            lambda p: parse_document(p).text,
            lambda p: md.convert(str(p)).markdown,
            len(docxs), "docs",
        )  # fmt: skip

    from mason.ingest.config import IngestConfig
    from mason.ingest.stage import ingest_documents

    out = Path(tempfile.mkdtemp(prefix="mason-bench-out-"))
    t0 = time.perf_counter()
    result = ingest_documents(IngestConfig(path=str(folder)), folder, out, show_progress=False)
    dt = time.perf_counter() - t0
    print(
        f"\ningest_documents end to end (parse + chunk + write, no cache): {dt:.2f} s, "
        f"{result.counts['documents']} docs, {result.counts['chunks']} chunks, {n_pages / dt:.1f} PDF pages/s overall"
    )
    if args.ocr_pages:
        bench_ocr(folder, args.ocr_pages)
    if args.web_pages:
        bench_web(args.web_pages)


if __name__ == "__main__":
    main()
