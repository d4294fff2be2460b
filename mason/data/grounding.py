"""Lexical grounding: how much of an answer can be found in the source chunk it was made from.

The rule (`lexical_support`):

1. Both texts are tokenized the same way: Unicode NFKC, case-folded, accents removed, split
   into words and numbers. Thousands separators are dropped from numbers (`1,200` = `1200`),
   nothing else: a number is a claim, so `3.5` and `3.50`, or `1200` and `1201`, differ.
2. Answer tokens that carry no content are dropped: stopwords (English, French, German,
   Spanish), single letters.
3. Words are lightly stemmed (plural, `-ing`, `-ed`, `-ly`, `-ment`, `-ness`, `-ation`,
   trailing `e`, doubled final consonant) so "studies" matches "studied" and "running" matches
   "run". Numbers are never stemmed.
4. The support is the share of the answer's *distinct* content tokens found in the source's
   tokens (so a word repeated ten times counts once). An answer with no content token at all
   (e.g. "Yes.") has support 1.0: it claims nothing the source could contradict; the length
   checks in `quality` deal with answers that short.

Evidence (`grounding_evidence`) adds the longest span of consecutive answer tokens (stopwords
included) that appears verbatim in the source, and which content words and numbers were not
found: a long span means the answer quotes the source; unsupported numbers are the usual sign
of an invented fact.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")

_STOPWORDS_TEXT = """
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can cannot could did do does doing down during each either else
few for from further had has have having he her here hers herself him himself his how however i
if in into is it its itself just let me more most much must my myself no nor not now of off on
once only or other ought our ours ourselves out over own per same she should so some such than
that the their theirs them themselves then there these they this those through thus to too under
until up upon us very via was we were what when where which while who whom whose why will with
within without would yes yet you your yours yourself yourselves one ones may might shall also
le la les un une des du de d l et ou mais donc car ni que qui quoi dont où au aux en dans par
pour sur avec sans sous est sont été être avoir a ont ce cet cette ces il elle ils elles on nous
vous je tu se sa son ses leur leurs ne pas plus y c s qu n
der die das den dem des ein eine einer eines einem einen und oder aber nicht ist sind war waren
wird werden zu zum zur im in am an auf aus bei mit nach von vor für über unter durch es er sie
wir ihr ich du sich auch als wie so dass
el la los las un una unos unas y o pero no es son fue era ser estar está están de del al en con
por para sin sobre entre que quien como más muy se su sus lo le les
"""


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


STOPWORDS: frozenset[str] = frozenset(_fold(w) for w in _STOPWORDS_TEXT.split())

# Longest first, so "ations" is tried before "s".
_SUFFIXES = ("ations", "ation", "ments", "ment", "nesses", "ness", "ingly", "ings", "ing",
             "edly", "ed", "ly", "es", "s")
# doubled final letters that are part of the word ("tell", "miss", "jazz") or vowels ("free")
_KEEP_DOUBLE = "lszaeiou"


def stem(word: str) -> str:
    """A light, language-agnostic stem of a folded word (see the module docstring, rule 3).

    The same function runs on both texts, so it only has to be consistent, not linguistic.
    """
    if len(word) <= 3:
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)]
            break
    while word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1].isalpha() and word[-1] not in _KEEP_DOUBLE:
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Folded word and number tokens of `text`, in order (numbers without thousands separators)."""
    out = []
    for tok in _TOKEN.findall(_fold(text)):
        if tok[0].isdigit():
            tok = tok.replace(",", "") if _THOUSANDS.match(tok) else tok
        out.append(tok)
    return out


def _is_number(tok: str) -> bool:
    return tok[0].isdigit()


def content_terms(text: str) -> list[str]:
    """Distinct content terms of `text`, in order of first appearance: stemmed non-stopwords
    of 2+ letters, and numbers exactly as written (minus thousands separators)."""
    seen: dict[str, None] = {}
    for tok in tokens(text):
        if _is_number(tok):
            seen.setdefault(tok, None)
        elif len(tok) >= 2 and tok not in STOPWORDS:
            seen.setdefault(stem(tok), None)
    return list(seen)


def _source_terms(source: str) -> set[str]:
    # The source side keeps stopwords too: harmless, and a stopword-free answer never needs them.
    return {tok if _is_number(tok) else stem(tok) for tok in tokens(source)}


def lexical_support(answer: str, source: str) -> float:
    """Share of the answer's distinct content terms that appear in the source (module rule).

    Returns:
        A float in [0, 1]; 1.0 when the answer has no content term, 0.0 when the source is empty
        and the answer is not.
    """
    terms = content_terms(answer)
    if not terms:
        return 1.0
    present = _source_terms(source)
    return sum(1 for t in terms if t in present) / len(terms)


def longest_common_span(answer: str, source: str) -> int:
    """Length, in tokens, of the longest run of consecutive answer tokens found verbatim (after
    folding) in the source. Stopwords count: this measures quoting, not topical overlap."""
    a, b = tokens(answer), tokens(source)
    if not a or not b:
        return 0
    # autojunk off: frequent tokens ("the") must still be able to join a span
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


@dataclass(frozen=True)
class GroundingEvidence:
    """Why an answer is, or is not, supported by its source.

    Attributes:
        support: `lexical_support(answer, source)`.
        longest_span: `longest_common_span(answer, source)`, in tokens.
        span_share: longest_span over the answer's token count (1.0: a verbatim quote).
        unsupported: content terms of the answer missing from the source (stemmed form).
        unsupported_numbers: numbers of the answer missing from the source.
    """

    support: float
    longest_span: int
    span_share: float
    unsupported: list[str] = field(default_factory=list)
    unsupported_numbers: list[str] = field(default_factory=list)


def grounding_evidence(answer: str, source: str) -> GroundingEvidence:
    """Support, longest verbatim span and the unsupported terms of `answer` against `source`.

    Returns:
        A `GroundingEvidence`; its `support` equals `lexical_support(answer, source)`.
    """
    terms = content_terms(answer)
    present = _source_terms(source)
    missing = [t for t in terms if t not in present]
    support = 1.0 if not terms else (len(terms) - len(missing)) / len(terms)
    span = longest_common_span(answer, source)
    n_tokens = len(tokens(answer))
    return GroundingEvidence(
        support=support,
        longest_span=span,
        span_share=span / n_tokens if n_tokens else 0.0,
        unsupported=missing,
        unsupported_numbers=[t for t in missing if _is_number(t)],
    )
