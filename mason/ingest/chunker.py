"""Split a document's Markdown-ish text into chunks that follow its headings and a token budget.

Invariant: every chunk's text is exactly `document_text[span[0]:span[1]]`, so any sample can
point back to the characters it came from.

How a document is cut:

1. ATX headings (`#`..`######`, outside fenced code) cut it into sections; each section knows
   its heading path (e.g. ["Guide", "Install"]).
2. A section smaller than `min_chunk_tokens` (a heading with one line under it, a heading
   directly followed by a sub-heading) is joined to the next section (the last one to the
   previous), so no chunk is a lonely heading.
3. Each group of sections is packed greedily into chunks of at most `chunk_size` tokens. A chunk
   ends at the strongest boundary in the second half of its budget: a section heading, then a
   blank line, a line break, a sentence end, a space, and only as a last resort inside a word.
4. The next chunk of the same section starts up to `chunk_overlap` tokens (capped at half the
   budget) before the previous one ended, at the strongest boundary in that overlap window (a
   sentence start rather than mid-sentence). Each chunk ends later than the one before.
5. A cut is never placed so late that the rest of the group would be a chunk smaller than
   `min_chunk_tokens`: the small remainder is kept with what precedes it.

A chunk's `headings` is the heading path shared by all the sections it touches.
Chunks never include leading or trailing whitespace.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from mason.core.hashing import text_sha1

# Approximate tokens. One piece per CJK character, per run of letters or digits (capped at 24
# characters so no piece outweighs a small budget), and per punctuation character. Weights
# mimic BPE vocabularies: short words are one token, longer ones one more per ~5 letters,
# digits about one token per 3, punctuation one each. English prose comes out at ~1.3 tokens
# per word (the demo corpus: 1.29), the usual ratio of GPT/Llama-style BPE vocabularies. It is
# an estimate for budgeting, not a tokenizer: it only has to be stable and cheap (one regex pass).
_PIECE = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
    r"|[^\W\d_]{1,24}|\d{1,24}|[^\w\s]|_"
)
_HEADING_OR_FENCE = re.compile(
    r"^(?:(?P<fence>[ ]{0,3}(?:`{3,}|~{3,}))|(?P<hashes>#{1,6})[ \t]+(?P<title>[^\n]*))", re.MULTILINE
)
_SENTENCE_PUNCT = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLOSERS = frozenset("\"')]\u201d\u2019")

# boundary strengths (higher = better place to cut)
_B_SECTION, _B_PARAGRAPH, _B_LINE, _B_SENTENCE, _B_SPACE, _B_NONE = 5, 4, 3, 2, 1, 0


def _weight(piece: str) -> int:
    n = len(piece)
    if n == 1:
        return 1
    if piece[0].isdigit():
        return (n + 2) // 3
    return 1 + max(0, n - 4) // 5


def count_tokens(text: str) -> int:
    """Approximate number of LLM tokens in `text` (see the comment on `_PIECE`).

    Returns an int >= 0; 0 only for empty or whitespace-only text.
    """
    pieces = _PIECE.findall(text)
    # most pieces weigh 1; only visit the few long ones in Python
    return len(pieces) + sum(_weight(p) - 1 for p in pieces if len(p) > 3)


@dataclass(frozen=True)
class Span:
    """One chunk before it gets an id: character span, heading path and token count."""

    start: int
    end: int
    headings: list[str]
    n_tokens: int


class _Pieces:
    """Token pieces of one text: offsets, prefix sums of weights, boundary strengths."""

    def __init__(self, text: str):
        self.text = text
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.cum: list[int] = [0]
        total = 0
        starts, ends, cum = self.starts.append, self.ends.append, self.cum.append
        for m in _PIECE.finditer(text):
            s, e = m.span()
            starts(s)
            ends(e)
            total += 1 if e - s < 4 else _weight(m.group())
            cum(total)
        self.n = len(self.starts)
        # piece indices where a section heading begins (set by the caller once known)
        self.section_starts: set[int] = set()
        self._strength: dict[int, int] = {}

    def tokens(self, i: int, j: int) -> int:
        return self.cum[j] - self.cum[i]

    def strength(self, k: int) -> int:
        """How good a cut is before piece k (0 < k < n)."""
        s = self._strength.get(k)
        if s is None:
            s = self._strength[k] = self._compute_strength(k)
        return s

    def _compute_strength(self, k: int) -> int:
        if k in self.section_starts:
            return _B_SECTION
        prev_end, start = self.ends[k - 1], self.starts[k]
        gap = self.text[prev_end:start]
        newlines = gap.count("\n")
        if newlines >= 2:
            return _B_PARAGRAPH
        if newlines == 1:
            return _B_LINE
        last = self.text[prev_end - 1]
        if last in _CLOSERS and prev_end >= 2:
            last = self.text[prev_end - 2]
        if last in _SENTENCE_PUNCT and (gap or last in "\u3002\uff01\uff1f"):
            return _B_SENTENCE
        return _B_SPACE if gap else _B_NONE

    def best_cut(self, lo: int, hi: int, *, latest: bool) -> int:
        """The strongest boundary k in [lo, hi]; ties go to the latest (or earliest) one."""
        best_k, best_s = hi if latest else lo, -1
        ks = range(hi, lo - 1, -1) if latest else range(lo, hi + 1)
        for k in ks:
            s = self.strength(k)
            if s > best_s:
                best_k, best_s = k, s
                if s == _B_SECTION:
                    break
        return best_k


def _sections(text: str) -> tuple[list[int], list[list[str]]]:
    """Character offsets where sections start (first is 0) and each section's heading path."""
    starts, paths = [0], [[]]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for m in _HEADING_OR_FENCE.finditer(text):
        if m.group("fence"):
            mark = m.group("fence").strip()[0]
            fence = mark if fence is None else (None if mark == fence else fence)
            continue
        if fence is not None:
            continue
        level = len(m.group("hashes"))
        title = re.sub(r"[ \t]+#+[ \t]*$", "", m.group("title")).strip().strip("*_").strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        path = [t for _, t in stack]
        if m.start() == 0:
            paths[0] = path
        else:
            starts.append(m.start())
            paths.append(path)
    return starts, paths


def _common_prefix(paths: list[list[str]]) -> list[str]:
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        n = min(n, len(p))
        for i in range(n):
            if p[i] != first[i]:
                n = i
                break
    return list(first[:n])


def _groups(pc: _Pieces, sec_pieces: list[int], min_tokens: int) -> list[tuple[int, int]]:
    """Piece ranges of section groups: sections under `min_tokens` join the next one."""
    bounds = sec_pieces + [pc.n]
    groups: list[tuple[int, int]] = []
    pending: int | None = None
    for a, b in zip(bounds, bounds[1:]):
        if a == b:
            continue
        start = a if pending is None else pending
        if pc.tokens(start, b) < min_tokens:
            pending = start
            continue
        groups.append((start, b))
        pending = None
    if pending is not None:
        if groups:
            groups[-1] = (groups[-1][0], pc.n)
        else:
            groups.append((pending, pc.n))
    return groups


def _pack(pc: _Pieces, a: int, b: int, size: int, overlap: int, min_tokens: int) -> list[tuple[int, int]]:
    """Cut pieces [a, b) into (i, j) piece ranges of at most `size` tokens (see module doc)."""
    cum = pc.cum
    out: list[tuple[int, int]] = []
    i, prev_end = a, a
    while pc.tokens(i, b) > size:
        j = max(bisect_right(cum, cum[i] + size, i + 1, b + 1) - 1, i + 1)
        # never cut so late that the rest of the group would be a tiny last chunk
        hi = min(j, max(bisect_right(cum, cum[b] - min_tokens, i + 1, b + 1) - 1, i + 1))
        # each chunk ends later than the one before (no near-duplicates) and is at least half full
        lo = max(bisect_left(cum, cum[i] + size // 2, i + 1, hi + 1), prev_end + 1, i + 1)
        end = pc.best_cut(lo, hi, latest=True) if lo <= hi else max(hi, prev_end + 1)
        out.append((i, end))
        nxt = end
        # overlap within a section only: a chunk that ends at a heading starts the next cleanly
        if overlap > 0 and pc.strength(end) != _B_SECTION:
            lo = max(bisect_left(cum, cum[end] - overlap, i + 1, end + 1), i + 1)
            if lo < end:
                nxt = pc.best_cut(lo, end - 1, latest=False)
        i, prev_end = nxt, end
    out.append((i, b))
    return out


def split_text(text: str, *, chunk_size: int, chunk_overlap: int = 0, min_chunk_tokens: int = 0) -> list[Span]:
    """Cut `text` into spans (see the module docstring for the rules).

    Returns Spans in document order; empty list for text with no visible character.
    Raises ValueError when `chunk_overlap >= chunk_size` or `chunk_size < 1`.
    """
    if chunk_size < 1 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"need 0 <= chunk_overlap ({chunk_overlap}) < chunk_size ({chunk_size})")
    # a minimum above half the budget could never be met by a cut in the second half; an
    # overlap above half the budget would make every token appear in three or more chunks
    min_tokens = max(0, min(min_chunk_tokens, chunk_size // 2))
    chunk_overlap = min(chunk_overlap, chunk_size // 2)
    sec_chars, sec_paths = _sections(text)
    pc = _Pieces(text)
    if pc.n == 0:
        return []
    sec_pieces = [bisect_left(pc.starts, c) for c in sec_chars]
    pc.section_starts = set(sec_pieces[1:])
    spans: list[Span] = []
    for a, b in _groups(pc, sec_pieces, min_tokens):
        for i, j in _pack(pc, a, b, chunk_size, chunk_overlap, min_tokens):
            first = bisect_right(sec_pieces, i) - 1
            last = bisect_left(sec_pieces, j) - 1
            headings = _common_prefix(sec_paths[max(first, 0) : max(last, first, 0) + 1])
            spans.append(Span(pc.starts[i], pc.ends[j - 1], headings, pc.tokens(i, j)))
    return spans


def chunk_document(
    text: str,
    *,
    doc: str,
    doc_sha256: str,
    chunk_size: int,
    chunk_overlap: int = 0,
    min_chunk_tokens: int = 0,
) -> list[dict]:
    """Chunks of one document as the dicts written to chunks.jsonl.

    Each dict: id (sha1 of doc sha256 and span), doc (relative posix path), doc_sha256,
    span [start, end] with text == document text[start:end], headings, text, n_tokens,
    index (0-based position in the document). Raises ValueError on a bad budget.
    """
    chunks = []
    for index, sp in enumerate(
        split_text(text, chunk_size=chunk_size, chunk_overlap=chunk_overlap, min_chunk_tokens=min_chunk_tokens)
    ):
        chunks.append(
            {
                "id": text_sha1(f"{doc_sha256}:{sp.start}:{sp.end}"),
                "doc": doc,
                "doc_sha256": doc_sha256,
                "span": [sp.start, sp.end],
                "headings": sp.headings,
                "text": text[sp.start : sp.end],
                "n_tokens": sp.n_tokens,
                "index": index,
            }
        )
    return chunks
