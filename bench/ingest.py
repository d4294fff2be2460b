"""MASON's document parsers against markitdown's own conversion, in the same run.

    python bench/ingest.py [--pdfs 20] [--pages 20] [--docx 10] [--keep DIR]

Generates multi-page text PDFs (fpdf2) and DOCX files from the demo corpus's prose, then times
`mason.ingest.parsers.parse_document` and `MarkItDown().convert` on the same files. Prints
pages/s (PDF) or documents/s (DOCX) for both, the speed ratio, and how similar the two texts
are. Similarity is computed on words after the same normalization on both sides: Markdown
markers (`#`, `*`, `|`, `-` bullets) removed and whitespace collapsed (pdfminer pads words with
double spaces and breaks every line; our parser unwraps lines into paragraphs). Reported:
the word-sequence ratio (difflib) and the bag-of-words F1.

Target: >= 10x markitdown on PDFs with similarity >= 0.95.
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


def bench(name: str, paths: list[Path], mason_fn, markitdown_fn, units: int, unit: str) -> None:
    t_mason, ours = _time_all(mason_fn, paths)
    t_md, theirs = _time_all(markitdown_fn, paths)
    sims = [similarity(a, b) for a, b in zip(ours, theirs)]
    ratio = statistics.mean(s[0] for s in sims)
    f1 = statistics.mean(s[1] for s in sims)
    print(f"\n{name}: {len(paths)} files, {units} {unit}")
    print(f"  mason      {t_mason:8.2f} s  {units / t_mason:9.1f} {unit}/s")
    print(f"  markitdown {t_md:8.2f} s  {units / t_md:9.1f} {unit}/s")
    print(f"  speed-up   {t_md / t_mason:8.1f}x")
    print(f"  similarity word-sequence {ratio:.4f} (min {min(s[0] for s in sims):.4f}), bag-of-words F1 {f1:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=int, default=20)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--docx", type=int, default=10)
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
    md.convert(str(docxs[0] if docxs else pdfs[0]))

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


if __name__ == "__main__":
    main()
