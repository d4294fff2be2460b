"""Text structure for the extractive (no-LLM) teacher: sections, paragraphs, sentences.

Also the small text operations its strategies need: the key sentences of a section, a key
term to blank out of a sentence (cloze questions), a number to change (flawed answers for
preference pairs). Everything here is deterministic and dependency-free.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

_ABBREVIATIONS = frozenset("e.g i.e etc vs approx fig no dr mr mrs ms st inc ltd co jr sr cf al".split())
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[`]?[A-Z0-9])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")

PRONOUN_START = frozenset("it its this that these those they their them he she his her we our you your "
                           "such here there both either neither".split())
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
                "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100}
NUMBER_RE = re.compile(r"^-?\d[\d,]*(?:\.\d+)?$|^\d{1,2}:\d{2}$")


def bare(word: str) -> str:
    """`word` without the punctuation around it."""
    return word.strip(",;:.!?\"'()[]\u201c\u201d\u2018\u2019")


# ---------------------------------------------------------------- the passage


@dataclass
class Paragraph:
    """Sentences of one paragraph (or list item) and the index of its section."""

    sentences: list[str]
    section: int


@dataclass
class Section:
    """A heading and its paragraphs. `faq` marks a heading that is itself a question."""

    heading: str | None
    paragraphs: list[Paragraph] = field(default_factory=list)
    faq: bool = False


@dataclass
class Passage:
    """A chunk cut into sections, paragraphs and sentences, with its document title."""

    title: str | None
    sections: list[Section]
    proper: frozenset[str]  # capitalized words seen inside sentences: names, not sentence starts

    def sentences(self) -> list[tuple[int, int, int, str]]:
        """Every sentence as (section index, paragraph index, sentence index, text)."""
        return [(si, pi, k, s) for si, sec in enumerate(self.sections) for pi, p in enumerate(sec.paragraphs)
                for k, s in enumerate(p.sentences)]


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph; no split after common abbreviations or single initials."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start:m.start()].split()
        last = bare(before[-1]).lower() if before else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    rest = text[start:].strip()
    return out + ([rest] if rest else [])


def _is_title_line(line: str) -> bool:
    # a short line with no final punctuation: a plain-text heading ("AquaSense Support FAQ")
    words = line.split()
    return 0 < len(words) <= 12 and line[0].isupper() and line[-1] not in ".!?:;,)" and "`" not in line


def _blocks(text: str) -> list[tuple[str, str]]:
    """(kind, text) blocks: "heading", "para" (lines joined) or "item"; code and tables dropped."""
    blocks: list[tuple[str, str]] = []
    para: list[str] = []
    in_fence = False

    def flush() -> None:
        if para:
            blocks.append(("para", " ".join(para)))
            para.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            flush()
            in_fence = not in_fence
        elif in_fence or line.startswith(("|", "<")):
            flush()  # code, tables and leftover markup are not prose to ask about
        elif not line:
            flush()
        elif m := _HEADING.match(line):
            flush()
            blocks.append(("heading", m.group(2).strip()))
        elif _LIST_ITEM.match(line):
            flush()
            blocks.append(("item", _LIST_ITEM.sub("", line, count=1)))
        else:
            para.append(line)
    flush()
    return blocks


def _proper_words(sentences: list[str]) -> frozenset[str]:
    found = set()
    for s in sentences:
        for w in s.split()[1:]:
            w = bare(w)
            if w[:1].isupper():
                found.add(w)
    return frozenset(found)


def parse_passage(text: str, headings: list[str] | None = None) -> Passage:
    """Cut chunk `text` into sections (at headings and FAQ question lines) and sentences.

    `headings` is the chunk's heading path: its first element is taken as the document title,
    its last as the heading of any text before the first inline heading.
    Returns the Passage.
    """
    headings = [h for h in headings or [] if h]
    title = headings[0] if headings else None
    sections = [Section(headings[-1] if len(headings) > 1 else None)]
    for kind, body in _blocks(text):
        is_question = body.endswith("?") and len(split_sentences(body)) == 1
        if kind == "heading" or (kind == "para" and (is_question or _is_title_line(body))):
            if title is None and not is_question:
                title = body
            elif body != title:
                sections.append(Section(body, faq=is_question))
            continue
        sents = split_sentences(body)
        if sents:
            sections[-1].paragraphs.append(Paragraph(sents, len(sections) - 1))
    sections = [s for s in sections if s.paragraphs]
    for i, sec in enumerate(sections):
        for p in sec.paragraphs:
            p.section = i
    proper = _proper_words([s for sec in sections for p in sec.paragraphs for s in p.sentences])
    return Passage(title, sections, proper)


def good_answer_sentence(sentence: str) -> bool:
    """A sentence fit to be (part of) an answer: complete, prose, 5 to 70 words."""
    words = sentence.split()
    letters = sum(c.isalpha() for c in sentence)
    return (5 <= len(words) <= 70 and sentence[-1:] in ".!?\"'\u201d)" and
            (sentence[0].isupper() or sentence[0] in "`\"\u201c(" or sentence[0].isdigit())
            and letters >= 0.6 * len(sentence.replace(" ", "")))


def starts_with_pronoun(sentence: str) -> bool:
    """True when the sentence opens with a word that refers back ("It", "This", "They"...)."""
    words = sentence.split()
    return bool(words) and bare(words[0]).lower() in PRONOUN_START


def is_number(word: str) -> bool:
    """A numeral ("30", "2,000", "1.5", "01:00") or a number word ("two", "twelve")."""
    b = bare(word)
    return bool(NUMBER_RE.match(b)) or b.lower() in NUMBER_WORDS


# ---------------------------------------------------------------- key sentences, cloze, numbers

_STOPWORDS = frozenset("a an the and or of to in on at for by with from is are was were be it its this that "
                       "these those as how what when why do does your you".split())
_NUMERAL = re.compile(r"(?<![\w.\-/+])(\d{1,2}:\d{2}|\d[\d,]*(?:\.\d+)?)(?![\w/]|\.\d)")
_NUMBER_PHRASE = re.compile(r"(?<![\w.\-/:])(?:\d{1,2}:\d{2}|\d[\d,]*(?:\.\d+)?)(?![\w:])"
                            r"(?:\s+(?:%|percent|[A-Za-z]{1,3}(?:/[A-Za-z]+)?\b|[a-z]{3,}s\b))?")
_CODE_SPAN = re.compile(r"`[^`]{2,40}`")
_TECH_TERM = re.compile(r"\b(?=[A-Za-z0-9-]*[A-Z])(?=[A-Za-z0-9-]*[0-9-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b"
                        r"|\b[A-Z]{2,}[0-9]+\b")
_PROPER_RUN = re.compile(r"(?<=\s)(?:[A-Z][\w-]*\s){1,3}[A-Z][\w-]*")


def content_words(text: str) -> set[str]:
    """Lowercased words of `text` that carry meaning (no stopwords, 3+ letters)."""
    return {w for w in re.findall(r"[a-z0-9][a-z0-9-]+", text.lower()) if w not in _STOPWORDS and len(w) >= 3}


def key_sentences(sentences: list[str], heading: str | None, *, limit: int = 3, max_words: int = 90) -> list[str]:
    """The `limit` most informative sentences, in their original order.

    A sentence scores for sharing words with the heading, holding a number, and coming first
    (openings state the topic). Sentences opening with a pronoun only come with the one before.
    Returns at most `limit` sentences and `max_words` words.
    """
    topic = content_words(heading or "")
    scored = []
    for i, s in enumerate(sentences):
        if not good_answer_sentence(s) or (starts_with_pronoun(s) and i == 0):
            continue
        score = 2 * len(topic & content_words(s)) + bool(_NUMERAL.search(s)) + (i == 0) * 2 - 0.01 * i
        scored.append((score, i))
    picked: set[int] = set()
    words = 0
    for _, i in sorted(scored, reverse=True):
        need = {i - 1, i} if starts_with_pronoun(sentences[i]) else {i}
        extra = sum(len(sentences[k].split()) for k in need - picked)
        if len(picked | need) > limit or words + extra > max_words:
            continue
        picked |= need
        words += extra
    return [sentences[i] for i in sorted(picked)]


def cloze_term(sentence: str, rng: random.Random) -> str | None:
    """A key term of `sentence` to blank out: a number with its unit, a code span, a technical
    term or a multi-word name (in that order of preference), or None."""
    first_word_end = len(sentence.split()[0]) if sentence.split() else 0
    for pattern in (_NUMBER_PHRASE, _CODE_SPAN, _TECH_TERM, _PROPER_RUN):
        found = [m.group(0).strip() for m in pattern.finditer(sentence) if m.start() >= first_word_end]
        # "0 to 20": a trailing function word is not part of the term
        found = [f.rsplit(" ", 1)[0] if f.split()[-1].lower() in _STOPWORDS else f for f in found]
        found = [f for f in found if f.lower() not in _STOPWORDS and len(f) >= 2]
        if found:
            return found[rng.randrange(len(found))]
    return None


def _changed(value: str, rng: random.Random) -> str:
    if ":" in value:
        hours, minutes = value.split(":")
        return f"{(int(hours) + rng.choice((2, 3, 5))) % 24:0{len(hours)}d}:{minutes}"
    if "." in value:
        decimals = len(value.split(".")[1])
        return f"{float(value.replace(',', '')) * rng.choice((2, 3)):.{decimals}f}"
    n = int(value.replace(",", ""))
    if 1900 <= n <= 2099 and "," not in value:
        return str(n + rng.choice((-2, -1, 1, 2)))
    new = rng.choice((n * 2, n + max(1, n // 2), n * 3)) if n else rng.choice((1, 2, 5))
    return f"{new:,}" if "," in value else str(new)


def _near_word(word: str, rng: random.Random) -> str:
    # "two people" -> "three people", not "ninety people": a wrong detail should be plausible
    value = NUMBER_WORDS[word]
    options = sorted((abs(v - value) / value, w) for w, v in NUMBER_WORDS.items() if v != value and w != "one")
    return rng.choice([w for _, w in options[:3]])


def _changeable(text: str, start: int, end: int) -> bool:
    """False for numbers that name things ("pH 7", "ISO 8601", "firmware 3.2") or open a range."""
    before = text[:start].split()
    prev = before[-1] if before else ""
    if prev[:1].isupper() or prev.lower() in ("ph", "firmware", "version", "v", "no", "number") or prev.endswith(","):
        return False
    return not re.match(r"\s*(?:and|to|-|\u2013)\s*\d", text[end:])


def change_number(text: str, rng: random.Random) -> str | None:
    """`text` with one of its numbers (numeral or number word) changed to a wrong value, or None.

    In a one-sentence text the first changeable number is changed (usually the fact a question
    asks about); in longer texts a random one.
    """
    spans = [(m.start(1), m.end(1), m.group(1)) for m in _NUMERAL.finditer(text)]
    spans += [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"\b[A-Za-z]+\b", text)
              if m.group(0).lower() in NUMBER_WORDS and m.group(0).lower() != "one"]
    spans = sorted(s for s in spans if _changeable(text, s[0], s[1]))
    if not spans:
        return None
    one_sentence = len(split_sentences(text)) == 1
    start, end, value = spans[0] if one_sentence else spans[rng.randrange(len(spans))]
    for _ in range(5):  # a value already in the text ("between 04:00 and 04:00") is a poor wrong answer
        if value[0].isdigit():
            new = _changed(value, rng)
        else:
            new = _near_word(value.lower(), rng)
            new = new.capitalize() if value[0].isupper() else new
        if new != value and not re.search(rf"(?<![\w.:]){re.escape(new)}(?![\w:])", text):
            return text[:start] + new + text[end:]
    return None
