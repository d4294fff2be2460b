"""Where a sample's answer comes from in its source chunk: the spans to highlight in the curation UI.

    spans = answer_spans(chunk, answer)          # [(start, end), ...] character offsets in chunk
    text = highlighted(chunk, spans)             # a rich Text with those spans styled

The whole answer is looked for first (case-insensitive); when it is not in the chunk verbatim (an
LLM teacher rephrased it, an edit changed it), the longest runs of at least `min_words` consecutive
words the answer shares with the chunk are highlighted instead, longest first, without overlaps.
Only rich is imported: this module has no UI dependency.
"""

from __future__ import annotations

import re
from collections import defaultdict

from rich.text import Text

_WORD = re.compile(r"\w+", re.UNICODE)
HIGHLIGHT_STYLE = "bold black on yellow"


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def answer_spans(chunk: str | None, answer: str | None, *, min_words: int = 3) -> list[tuple[int, int]]:
    """Character spans of `chunk` where `answer` (or its runs of >= `min_words` shared words) occur."""
    if not chunk or not answer or not answer.strip():
        return []
    low_chunk, needle = chunk.lower(), answer.strip().lower()
    exact: list[tuple[int, int]] = []
    at = low_chunk.find(needle)
    while at >= 0:
        exact.append((at, at + len(needle)))
        at = low_chunk.find(needle, at + len(needle))
    if exact:
        return exact
    chunk_words = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(chunk)]
    answer_words = [m.group().lower() for m in _WORD.finditer(answer)]
    if len(answer_words) < min_words or len(chunk_words) < min_words:
        return []
    where: dict[str, list[int]] = defaultdict(list)
    for j, (word, _, _) in enumerate(chunk_words):
        where[word].append(j)
    # every maximal run (answer i.., chunk j..) of equal words: start only where the run cannot extend left
    runs: list[tuple[int, int, int]] = []  # (length, i, j)
    for i, word in enumerate(answer_words):
        for j in where.get(word, ()):
            if i and j and answer_words[i - 1] == chunk_words[j - 1][0]:
                continue
            n = 1
            while (i + n < len(answer_words) and j + n < len(chunk_words)
                   and answer_words[i + n] == chunk_words[j + n][0]):
                n += 1
            if n >= min_words:
                runs.append((n, i, j))
    runs.sort(key=lambda r: (-r[0], r[1], r[2]))
    used_answer: set[int] = set()
    used_chunk: set[int] = set()
    spans: list[tuple[int, int]] = []
    for n, i, j in runs:
        a_range, c_range = set(range(i, i + n)), set(range(j, j + n))
        if a_range & used_answer or c_range & used_chunk:
            continue
        used_answer |= a_range
        used_chunk |= c_range
        spans.append((chunk_words[j][1], chunk_words[j + n - 1][2]))
    return _merge(spans)


def highlighted(chunk: str, spans: list[tuple[int, int]], style: str = HIGHLIGHT_STYLE) -> Text:
    """`chunk` as a rich Text with `spans` styled (reverse video on yellow by default)."""
    text = Text(chunk)
    for start, end in spans:
        text.stylize(style, start, end)
    return text
