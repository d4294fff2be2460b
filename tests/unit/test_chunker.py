"""Chunker: span invariant, heading paths, token budget, overlap, merging of small pieces."""

from __future__ import annotations

import random
import re

import pytest

from mason.core.hashing import text_sha1
from mason.ingest.chunker import chunk_document, count_tokens, split_text

WORDS = (
    "the buoy measures dissolved oxygen every fifteen minutes and uploads readings to the cloud "
    "calibration requires buffers while operators configure alerts for turbidity conductivity"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
    if rng.random() < 0.1:
        words.append("x" * rng.randint(20, 70))  # a long token (URL, hash, chemical name)
    if rng.random() < 0.1:
        words.append(str(rng.randint(0, 10**9)))
    if rng.random() < 0.05:
        words.append("水质监测浮标每十五分钟测量一次")
    return " ".join(words).capitalize() + rng.choice([".", "!", "?", ".\u201d", ""])


def random_document(seed: int) -> str:
    """A Markdown-ish document with headings, paragraphs, lists, code fences and odd spacing."""
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(1, 14)):
        r = rng.random()
        if r < 0.25:
            parts.append("#" * rng.randint(1, 4) + " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))))
        elif r < 0.32:
            parts.append("```\n# not a heading\n" + _sentence(rng) + "\n```")
        elif r < 0.4:
            parts.append("\n".join("- " + _sentence(rng) for _ in range(rng.randint(1, 5))))
        else:
            sep = rng.choice([" ", " ", "  ", "\n", " \t "])
            parts.append(sep.join(_sentence(rng) for _ in range(rng.randint(1, 12))))
    glue = rng.choice(["\n\n", "\n\n", "\n", "\n\n\n"])
    return rng.choice(["", "\n", "  "]) + glue.join(parts) + rng.choice(["", "\n", " \n"])


def _check_invariants(text: str, chunks: list[dict], size: int, overlap: int) -> None:
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(text)
    prev = None
    for c in chunks:
        s, e = c["span"]
        assert c["text"] == text[s:e]
        assert c["text"] == c["text"].strip() and c["text"]
        assert c["n_tokens"] == count_tokens(c["text"])
        assert c["n_tokens"] <= size
        if prev is not None:
            assert s > prev["span"][0] and e > prev["span"][1]  # always moves forward
            if s < prev["span"][1]:  # overlapping neighbours share at most `overlap` tokens
                assert count_tokens(text[s : prev["span"][1]]) <= overlap
        for k in range(s, e):
            covered[k] = True
        prev = c
    missing = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not missing, f"characters not in any chunk: {missing[:10]}"


@pytest.mark.parametrize("seed", range(60))
def test_random_documents_keep_span_invariant(seed: int) -> None:
    text = random_document(seed)
    rng = random.Random(seed * 7 + 1)
    size = rng.choice([16, 24, 40, 64, 128, 512])
    overlap = rng.choice([0, 0, size // 8, size // 4, size // 2])
    min_tokens = rng.choice([0, 4, 24])
    chunks = chunk_document(
        text, doc="a.md", doc_sha256="0" * 64, chunk_size=size, chunk_overlap=overlap, min_chunk_tokens=min_tokens
    )
    assert chunks
    _check_invariants(text, chunks, size, overlap)


def test_count_tokens_approximates_bpe() -> None:
    assert count_tokens("") == 0 and count_tokens(" \n\t ") == 0
    assert count_tokens("the cat sat") == 3
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("internationalization") > count_tokens("nation") == 1
    assert count_tokens("1234567") == 3  # digits: about one token per 3
    assert count_tokens("水质监测") == 4  # one per CJK character
    # a long run is split into capped pieces: still counted, never one giant piece
    assert count_tokens("a" * 100) >= 15
    prose = " ".join(WORDS)
    assert len(prose.split()) <= count_tokens(prose) <= 1.6 * len(prose.split())


GUIDE = """# Guide

Intro paragraph about the guide with enough words to stand on its own as a chunk of text.

## Install

### Linux

Run the installer with sudo, then check the version printed at the end of the run.

### Mac

Drag the application into the Applications folder and open it once from Finder.

## Usage

```
# this comment is code, not a heading
mason run
```

Call mason run in the folder that holds the pipeline file and wait for the report.
"""


def test_heading_paths_follow_the_document_structure() -> None:
    chunks = chunk_document(GUIDE, doc="g.md", doc_sha256="a" * 64, chunk_size=64, chunk_overlap=0, min_chunk_tokens=8)
    by_start = {c["text"].split("\n", 1)[0]: c["headings"] for c in chunks}
    assert by_start["# Guide"] == ["Guide"]
    # "## Install" has no text of its own: it is merged into its first subsection's chunk, whose
    # headings are the path shared by both sections
    assert by_start["## Install"] == ["Guide", "Install"]
    assert "### Linux" in next(c["text"] for c in chunks if c["text"].startswith("## Install"))
    assert by_start["### Mac"] == ["Guide", "Install", "Mac"]
    assert by_start["## Usage"] == ["Guide", "Usage"]
    assert not any("this comment is code" in h for c in chunks for h in c["headings"])
    _check_invariants(GUIDE, chunks, 64, 0)


def test_sections_are_not_mixed_when_each_is_big_enough() -> None:
    chunks = chunk_document(
        GUIDE, doc="g.md", doc_sha256="a" * 64, chunk_size=512, chunk_overlap=64, min_chunk_tokens=8
    )
    for c in chunks:
        # every chunk starts at a heading: sections are kept apart and never overlap
        assert c["text"].startswith("#")
    assert [c["span"][0] for c in chunks] == sorted({c["span"][0] for c in chunks})
    assert all(a["span"][1] <= b["span"][0] for a, b in zip(chunks, chunks[1:]))


def _long_section(n_paragraphs: int, seed: int = 0, sentences: int = 4) -> str:
    rng = random.Random(seed)
    paras = [" ".join(_sentence(rng) for _ in range(sentences)) for _ in range(n_paragraphs)]
    return "# Long\n\n" + "\n\n".join(paras) + "\n"


def test_budget_respected_and_cuts_at_natural_boundaries() -> None:
    text = _long_section(60, sentences=1)  # paragraphs of at most ~45 tokens
    chunks = chunk_document(text, doc="l.md", doc_sha256="b" * 64, chunk_size=100, chunk_overlap=0, min_chunk_tokens=10)
    assert len(chunks) > 5
    _check_invariants(text, chunks, 100, 0)
    # a paragraph boundary always lies in the second half of the budget: every cut is there
    for a, b in zip(chunks, chunks[1:]):
        assert text[a["span"][1] : b["span"][0]] == "\n\n"
    # chunks are reasonably full: the cut is taken in the second half of the budget
    assert all(c["n_tokens"] >= 50 for c in chunks[:-1])


def test_one_huge_paragraph_is_cut_at_sentence_ends() -> None:
    rng = random.Random(3)
    text = " ".join(_sentence(rng).rstrip(".!?\u201d") + "." for _ in range(200))
    chunks = chunk_document(text, doc="p.txt", doc_sha256="c" * 64, chunk_size=80, chunk_overlap=0, min_chunk_tokens=0)
    _check_invariants(text, chunks, 80, 0)
    assert all(c["text"].endswith(".") for c in chunks)


def test_overlap_shares_tokens_within_a_section() -> None:
    rng = random.Random(5)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 8))).capitalize() + "." for _ in range(400)]
    # short sentences (< 12 tokens): a 30-token overlap window always holds a sentence start
    text = "# Long\n\n" + "\n\n".join(" ".join(sentences[k : k + 10]) for k in range(0, 400, 10))
    chunks = chunk_document(
        text, doc="o.md", doc_sha256="d" * 64, chunk_size=120, chunk_overlap=30, min_chunk_tokens=10
    )
    _check_invariants(text, chunks, 120, 30)
    shared = [count_tokens(text[b["span"][0] : a["span"][1]]) for a, b in zip(chunks, chunks[1:])]
    assert all(0 < n <= 30 for n in shared), shared
    # the overlap starts at a good boundary: a paragraph or sentence start
    for c in chunks[1:]:
        s = c["span"][0]
        assert text[s - 1] in "\n " and (text[s - 1] == "\n" or text[s - 2] == ".")
    no_overlap = chunk_document(text, doc="o.md", doc_sha256="d" * 64, chunk_size=120, chunk_overlap=0)
    assert all(a["span"][1] < b["span"][0] for a, b in zip(no_overlap, no_overlap[1:]))
    assert len(no_overlap) < len(chunks)


def test_small_pieces_are_merged_into_a_neighbour() -> None:
    text = (
        "# A\n\nTiny.\n\n# B\n\n"
        + " ".join(["Sentence number one of section B goes on for a while."] * 6)
        + "\n\n# C\n\nEnd."
    )
    chunks = chunk_document(text, doc="m.md", doc_sha256="e" * 64, chunk_size=200, chunk_overlap=0, min_chunk_tokens=10)
    _check_invariants(text, chunks, 200, 0)
    assert len(chunks) == 1  # A joins B (next), C joins B (previous)
    assert chunks[0]["headings"] == []  # A, B and C share no heading
    # the small tail of a long section is merged into the chunk before it when it fits...
    body = "# T\n\n" + "\n\n".join(["word " * 30 + "end."] * 3) + "\n\nShort tail."
    merged = chunk_document(body, doc="t.md", doc_sha256="f" * 64, chunk_size=80, chunk_overlap=0, min_chunk_tokens=10)
    _check_invariants(body, merged, 80, 0)
    assert all(c["n_tokens"] >= 10 for c in merged)
    assert merged[-1]["text"].endswith("Short tail.")


def test_cut_moves_earlier_so_the_last_chunk_is_not_tiny() -> None:
    body = "# T\n\n" + " ".join(["alpha beta gamma delta."] * 40) + "\n\nTail."
    chunks = chunk_document(body, doc="t.md", doc_sha256="f" * 64, chunk_size=60, chunk_overlap=0, min_chunk_tokens=20)
    _check_invariants(body, chunks, 60, 0)
    assert all(c["n_tokens"] >= 20 for c in chunks)
    assert chunks[-1]["text"].endswith("Tail.")


def test_overlap_above_half_the_budget_is_capped() -> None:
    text = _long_section(10, seed=9)
    chunks = chunk_document(text, doc="o.md", doc_sha256="d" * 64, chunk_size=64, chunk_overlap=63)
    _check_invariants(text, chunks, 64, 32)
    assert len(chunks) < 3 * count_tokens(text) / 32


def test_tiny_document_gives_one_chunk() -> None:
    chunks = chunk_document(
        "Hi.", doc="h.txt", doc_sha256="0" * 64, chunk_size=512, chunk_overlap=64, min_chunk_tokens=24
    )
    assert len(chunks) == 1 and chunks[0]["text"] == "Hi." and chunks[0]["span"] == [0, 3]
    assert chunk_document(" \n ", doc="h.txt", doc_sha256="0" * 64, chunk_size=512) == []


def test_chunk_rows_ids_and_fields() -> None:
    sha = "9" * 64
    chunks = chunk_document(GUIDE, doc="docs/g.md", doc_sha256=sha, chunk_size=64, chunk_overlap=8, min_chunk_tokens=8)
    assert set(chunks[0]) == {"id", "doc", "doc_sha256", "span", "headings", "text", "n_tokens", "index"}
    for c in chunks:
        assert c["id"] == text_sha1(f"{sha}:{c['span'][0]}:{c['span'][1]}")
        assert c["doc"] == "docs/g.md" and c["doc_sha256"] == sha
    assert len({c["id"] for c in chunks}) == len(chunks)
    again = chunk_document(GUIDE, doc="docs/g.md", doc_sha256=sha, chunk_size=64, chunk_overlap=8, min_chunk_tokens=8)
    assert again == chunks


def test_bad_budget_raises() -> None:
    with pytest.raises(ValueError):
        split_text("abc", chunk_size=10, chunk_overlap=10)
    with pytest.raises(ValueError):
        split_text("abc", chunk_size=0)


def test_large_document_is_fast() -> None:
    import time

    text = "\n\n".join(_long_section(50, seed=s) for s in range(20))  # ~1 MB of prose
    assert len(text) > 300_000
    t0 = time.perf_counter()
    chunks = chunk_document(text, doc="big.md", doc_sha256="1" * 64, chunk_size=512, chunk_overlap=64)
    assert time.perf_counter() - t0 < 5.0
    assert re.sub(r"\s", "", "".join(text[c["span"][0] : c["span"][1]] for c in chunks)).startswith("#Long")
