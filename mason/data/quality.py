"""Cheap quality heuristics over generated samples (the MTN Sails set).

Every check looks at the turns the teacher wrote — user and assistant turns, plus `chosen` and
`rejected` of preference samples — never at the system prompt (the user wrote it) or at tool
outputs. Each failed check adds one reason code:

- `empty`: no question, no answer, or a turn with nothing but whitespace.
- `too_short`: the first question has fewer than `min_question_words` words, or an answer fewer
  than `min_answer_words`.
- `repetitive`: more than `max_repetition` of a text's word 3-grams repeat an earlier 3-gram, or
  a run of one short unit repeated over and over (`hahaha…`, `abcabcabc…`) covers more than
  `max_repetition` of its characters.
- `gibberish`: mostly symbols, too few vowels for a Latin-script language, or mostly implausible
  word shapes (no vowel, long consonant runs, very long tokens). Code (fenced, inline or bare)
  is left out of these checks, and so are non-Latin scripts' vowels, digits and acronyms.
- `echo`: an answer whose word set is at least `max_echo` similar (Jaccard) to its question.
- `identical_pair`: a preference sample whose `chosen` and `rejected` say the same thing.
- `ungrounded`: (only when the source chunk is given) the answers' lexical support in the
  chunk is below `min_grounding` (see `mason.data.grounding`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from mason.core.config import Section
from mason.data.grounding import lexical_support

ISSUES: tuple[str, ...] = (
    "empty", "too_short", "repetitive", "gibberish", "echo", "identical_pair", "ungrounded",
)

# Scripts written without spaces: every character counts as one word, or a Chinese answer of
# forty characters would be "one word" and rejected as too short.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_URLISH = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|(?:[\w.-]*/){2,}\S*")
_CODE_LINE = re.compile(
    r"^\s*(?:def|class|import|from|return|if|elif|else|for|while|try|except|function|const|let|var|"
    r"public|private|static|#include|SELECT|INSERT|UPDATE|print|echo|fn|func|package)\b"
    r"|[;{}]\s*$|\)\s*:\s*$|\b\w+\s*=\s*\S|->|=>|==|\w\(.*\)"
)
# A unit of 2-12 characters repeated at least four times in a row, or one character six times
# or more (so "sleeeep" is not a run).
_CHAR_RUN = re.compile(r"(.{2,12}?)\1{3,}|(.)\2{5,}", re.DOTALL)
_VOWELS = set("aeiouy")
_EDGE_PUNCT = ".,;:!?\"'()[]{}<>«»“”‘’*_-"
_ALPHA_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_INNER_JOIN = re.compile(r"['’-]")
# Digraphs that count as one consonant sound, so German "Angstschweiß" or English "strengths"
# do not look like keyboard mashing.
_DIGRAPHS = re.compile(r"tsch|sch|ch|sh|th|ph|ck|ng|gh|wh|qu|sz|cz|rz")
_CONSONANT_RUN = 6
# German compounds reach 40 letters and commit hashes 40 characters; longer is a run-on blob.
_LONG_WORD = 45
_LONG_TOKEN = 64
# Markdown horizontal rules ("-----", "=====") and table separator rows ("|---|:--:|").
_RULE_LINE = re.compile(r"^[ \t]*(?:([-=*_~#+.])\1{2,}|\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*(?::?-{3,}:?)?)[ \t]*$",
                        re.MULTILINE)

# Gibberish limits. They sit well away from natural text: alphanumeric share of prose is above
# 0.8, vowels are about 40% of the letters in English, French, German, Spanish or Polish.
MIN_ALNUM_RATIO = 0.5
MIN_VOWEL_SHARE = 0.25
MAX_IMPLAUSIBLE_SHARE = 0.3
MIN_CHARS_TO_JUDGE = 12
MIN_LATIN_LETTERS = 30


class FilterConfig(Section):
    """Quality heuristics, grounding and deduplication."""

    min_answer_words: int = Field(3, ge=0, description="Answers shorter than this are rejected (`too_short`).")
    min_question_words: int = Field(3, ge=0, description="Questions shorter than this are rejected (`too_short`).")
    max_repetition: float = Field(
        0.3, ge=0, le=1, description="Largest share of repeated word 3-grams an answer may have (`repetitive`)."
    )
    max_echo: float = Field(
        0.9, ge=0, le=1, description="Reject answers whose words are this similar to the question's (`echo`)."
    )
    min_grounding: float = Field(
        0.5, ge=0, le=1, description="Share of the answer's content words that must appear in the source chunk."
    )
    near_duplicate_threshold: float = Field(
        0.85, gt=0, le=1, description="Jaccard similarity (MinHash LSH) above which two questions are duplicates."
    )


def message_text(message: dict[str, Any] | None) -> str:
    """The text of a chat message: its `content` string, or the text parts of a content list.

    Returns:
        "" when the message is missing or has no text (e.g. an assistant turn with only tool calls).
    """
    if not message:
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def user_turns(sample: dict[str, Any]) -> list[str]:
    """Texts of the sample's user turns, in order."""
    return [message_text(m) for m in sample.get("messages", []) if m.get("role") == "user"]


def question_text(sample: dict[str, Any]) -> str:
    """What a sample asks: the first user turn, or the whole user side of a multi-turn sample."""
    return "\n".join(user_turns(sample))


def answer_messages(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant turns that answer: those in `messages`, then `chosen` of a preference sample."""
    answers = [m for m in sample.get("messages", []) if m.get("role") == "assistant"]
    if sample.get("chosen") is not None:
        answers.append(sample["chosen"])
    return answers


def words(text: str) -> list[str]:
    """Words of `text`, case-folded; each character of an unspaced script (CJK, Thai) is a word."""
    return _WORD.findall(_UNSPACED.sub(r" \g<0> ", text).casefold())


# ---------------------------------------------------------------------------- text features


@dataclass(frozen=True)
class TextFeatures:
    """Measurements of one turn's text that the checks and the score share.

    Attributes:
        words: number of words.
        word_repetition: share of word 3-grams that repeat an earlier one.
        char_repetition: share of characters inside runs of a short repeated unit.
        alnum_ratio: letters and digits over non-space characters (prose part; 1.0 if too little).
        vowel_share: vowels over Latin letters outside acronyms (1.0 if too few letters).
        implausible_share: share of word tokens with an implausible shape.
        is_code: the whole text looks like code (gibberish checks are skipped).
    """

    words: int
    word_repetition: float
    char_repetition: float
    alnum_ratio: float
    vowel_share: float
    implausible_share: float
    is_code: bool

    @property
    def gibberish(self) -> bool:
        return (self.alnum_ratio < MIN_ALNUM_RATIO or self.vowel_share < MIN_VOWEL_SHARE
                or self.implausible_share > MAX_IMPLAUSIBLE_SHARE)


def ngram_repetition(tokens: list[str], n: int = 3) -> float:
    """Share of the word n-grams of `tokens` that repeat an n-gram seen earlier.

    Returns:
        0.0 when there are fewer than two n-grams.
    """
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return (len(grams) - len(set(grams))) / len(grams)


def char_repetition(text: str) -> float:
    """Share of the non-space characters of `text` inside runs of a short repeated unit
    (a unit of 2-12 characters four times or more, or one character six times or more).

    Units without a letter are skipped: `-----`, `|---|---|` are formatting (Markdown rules and
    tables) and `10000000` is a number, not degenerate output.
    """
    pieces = text.split()
    total = sum(map(len, pieces))
    covered = 0
    # Runs with spaces in them ("ha ha ha ha") are the word n-gram check's job; within a token,
    # a run needs at least six characters, so shorter tokens (most of them) are skipped.
    for piece in pieces:
        if len(piece) < 6:
            continue
        for match in _CHAR_RUN.finditer(piece):
            unit = match.group(1) or match.group(2)
            # a unit without letters is formatting ("-=-=-=") or a number ("10000000")
            if any(ch.isalpha() for ch in unit):
                covered += len(match.group(0))
    return covered / total if total else 0.0


def looks_like_code(text: str) -> bool:
    """Whether most non-empty lines of `text` carry a code marker (keyword, `=`, `;`, braces...)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    visible = len(text) - sum(map(str.isspace, text))
    # Real code is still mostly identifiers; a line of symbols ending in ";" is not code.
    if not lines or sum(map(str.isalnum, text)) < 0.4 * visible:
        return False
    return sum(1 for ln in lines if _CODE_LINE.search(ln)) / len(lines) >= 0.5


def _prose(text: str) -> str:
    # Code, URLs, paths and e-mail addresses have their own legitimate shapes; judge the prose.
    text = _FENCED.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _RULE_LINE.sub(" ", text).replace("|", " ")
    return _URLISH.sub(" ", text)


def _strip_accents(word: str) -> str:
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1 << 16)
def _latin_word(token: str) -> str | None:
    # Latin-script letters only (after removing accents); None for other scripts, digits, acronyms.
    if not token.isalpha() or (token.isupper() and len(token) <= 6):
        return None
    plain = _strip_accents(token).lower().replace("ß", "ss").replace("ø", "o").replace("æ", "ae")
    return plain if plain.isascii() else None


@functools.lru_cache(maxsize=1 << 16)
def implausible_word(token: str) -> bool:
    """Whether a token's shape is unlike a word of any Latin-script language.

    Implausible: a word of letters longer than 45, any other token longer than 64 characters
    (URLs and code are removed before this runs), or a Latin-script word of 4+ letters with no
    vowel (y counts) or with 6+ consonants in a row once digraphs such as `sch`, `th`, `ng`
    count as one. Acronyms (all capitals, up to 6 letters) and other scripts are plausible.
    """
    if len(token) > (_LONG_WORD if token.isalpha() else _LONG_TOKEN):
        return True
    latin = _latin_word(token)
    if latin is None or len(latin) < 4:
        return False
    if not any(ch in _VOWELS for ch in latin):
        return True
    collapsed = _DIGRAPHS.sub("C", latin)
    run = longest = 0
    for ch in collapsed:
        run = 0 if ch in _VOWELS else run + 1
        longest = max(longest, run)
    return longest >= _CONSONANT_RUN


@functools.lru_cache(maxsize=1 << 16)
def _letters_and_vowels(token: str) -> tuple[int, int]:
    latin = _latin_word(token)
    return (len(latin), sum(1 for ch in latin if ch in _VOWELS)) if latin else (0, 0)


def _vowel_share(tokens: list[str]) -> float:
    letters = vowels = 0
    for token in tokens:
        n, v = _letters_and_vowels(token)
        letters += n
        vowels += v
    return vowels / letters if letters >= MIN_LATIN_LETTERS else 1.0


def text_features(text: str) -> TextFeatures:
    """Measure one turn's text (see `TextFeatures`)."""
    tokens = words(text)
    rep = ngram_repetition(tokens)
    chars = char_repetition(text)
    prose = _prose(text)
    if looks_like_code(_FENCED.sub(" ", text)) or (_FENCED.search(text) and not prose.strip()):
        return TextFeatures(len(tokens), rep, chars, 1.0, 1.0, 0.0, True)
    visible = len(prose) - sum(map(str.isspace, prose))
    alnum = sum(map(str.isalnum, prose)) / visible if visible >= MIN_CHARS_TO_JUDGE else 1.0
    raw_tokens = [t for t in (t.strip(_EDGE_PUNCT) for t in prose.split()) if t]
    implausible = 0.0
    if len(raw_tokens) >= 4:
        implausible = sum(1 for t in raw_tokens if implausible_word(t)) / len(raw_tokens)
    # Vowels are counted in words of letters only ("x86" and "H2O" are not words to judge);
    # "l'énergie" and "Donau-Dampfschiff" count as their parts.
    parts = [p for t in raw_tokens if _ALPHA_TOKEN.fullmatch(t) for p in _INNER_JOIN.split(t)]
    return TextFeatures(len(tokens), rep, chars, alnum, _vowel_share(parts), implausible, False)


# ---------------------------------------------------------------------------- checks


def _jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _qa_pairs(sample: dict[str, Any]) -> list[tuple[str, str]]:
    # Each answer with the user turn right before it (chosen answers the last user turn).
    pairs, last_user = [], ""
    for message in sample.get("messages", []):
        if message.get("role") == "user":
            last_user = message_text(message)
        elif message.get("role") == "assistant" and message_text(message).strip():
            pairs.append((last_user, message_text(message)))
    if sample.get("chosen") is not None:
        pairs.append((last_user, message_text(sample["chosen"])))
    return pairs


def _empty(sample: dict[str, Any]) -> bool:
    users = user_turns(sample)
    answers = answer_messages(sample)
    if not users or not answers or any(not u.strip() for u in users):
        return True
    # An assistant turn that only calls tools has no text, and that is fine.
    if any(not message_text(m).strip() and not m.get("tool_calls") for m in answers):
        return True
    return "rejected" in sample and not message_text(sample.get("rejected")).strip()


def quality_issues(sample: dict[str, Any], cfg: FilterConfig | None = None, *,
                   source: str | None = None) -> list[str]:
    """Reason codes of every heuristic the sample fails (see the module docstring).

    Args:
        sample: a sample in the data contract.
        cfg: thresholds (defaults: `FilterConfig()`).
        source: the source chunk's text; when given, also check `ungrounded`.

    Returns:
        Reason codes in the order of `ISSUES`; [] when the sample passes. An `empty` sample gets
        only `empty` (the other checks have nothing to look at).
    """
    cfg = cfg or FilterConfig()
    if _empty(sample):
        return ["empty"]
    users = user_turns(sample)
    answers = [message_text(m) for m in answer_messages(sample) if message_text(m).strip()]
    generated = users + answers + ([message_text(sample["rejected"])] if sample.get("rejected") else [])
    features = [text_features(t) for t in generated]
    issues: list[str] = []
    if len(words(users[0])) < cfg.min_question_words or any(len(words(a)) < cfg.min_answer_words for a in answers):
        issues.append("too_short")
    if any(max(f.word_repetition, f.char_repetition) > cfg.max_repetition for f in features):
        issues.append("repetitive")
    if any(f.gibberish for f in features):
        issues.append("gibberish")
    if any(_jaccard(words(q), words(a)) >= cfg.max_echo for q, a in _qa_pairs(sample)):
        issues.append("echo")
    if sample.get("rejected") is not None and sample.get("chosen") is not None:
        chosen, rejected = message_text(sample["chosen"]), message_text(sample["rejected"])
        if " ".join(words(chosen)) == " ".join(words(rejected)) and not sample["chosen"].get("tool_calls"):
            issues.append("identical_pair")
    if source is not None and answers and lexical_support("\n".join(answers), source) < cfg.min_grounding:
        issues.append("ungrounded")
    return issues


# ---------------------------------------------------------------------------- scores


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _turn_factor(f: TextFeatures, min_words: int) -> float:
    # Each factor is 1.0 for comfortably normal text and falls linearly to 0; it is about 0.5
    # at the default limit of the matching check, so failing text scores well below clean text.
    length = _clip(f.words / max(min_words, 1)) ** 0.5
    repetition = 1.0 - _clip(max(f.word_repetition, f.char_repetition) / 0.6)
    gibberish = 1.0 - max(
        _clip((0.7 - f.alnum_ratio) / 0.4),
        _clip((0.3 - f.vowel_share) / 0.1),
        _clip((f.implausible_share - 0.1) / 0.4),
    )
    return length * repetition * gibberish


def quality_score(sample: dict[str, Any]) -> float:
    """A continuous quality score in [0, 1] built from the same signals as `quality_issues`.

    The score is the product of one factor per signal, each taken at the worst turn: length
    (answers of 10+ words, questions of 5+ words get full credit), repetition, gibberish and
    echo. It ranks samples (e.g. in balancing) where the pass/fail checks cannot.

    Returns:
        0.0 for an empty sample, 1.0 for one with no weak signal at all.
    """
    if _empty(sample):
        return 0.0
    users = user_turns(sample)
    answers = [message_text(m) for m in answer_messages(sample) if message_text(m).strip()]
    factors = [_turn_factor(text_features(users[0]), 5)]
    factors += [_turn_factor(text_features(u), 1) for u in users[1:]]
    factors += [_turn_factor(text_features(a), 10) for a in answers]
    echo = max((_jaccard(words(q), words(a)) for q, a in _qa_pairs(sample)), default=0.0)
    score = min(factors, default=1.0) * (1.0 - _clip((echo - 0.5) / 0.5))
    return round(score, 4)


def dataset_quality(samples: Iterable[dict[str, Any]], cfg: FilterConfig | None = None) -> dict[str, Any]:
    """Summary of a dataset's quality.

    Returns:
        {"samples": n, "mean_score": mean of `quality_score`, "share_passing": share with no
        issue, "issues": {code: number of samples with it}} (issues with zero count included).
    """
    cfg = cfg or FilterConfig()
    counts: Counter[str] = Counter({code: 0 for code in ISSUES if code != "ungrounded"})
    n = passing = 0
    total = 0.0
    for sample in samples:
        n += 1
        total += quality_score(sample)
        issues = quality_issues(sample, cfg)
        counts.update(issues)
        passing += not issues
    return {
        "samples": n,
        "mean_score": round(total / n, 4) if n else 0.0,
        "share_passing": round(passing / n, 4) if n else 0.0,
        "issues": dict(counts),
    }
