"""Text metrics by name: a prediction against its reference answer, per row and over the corpus.

Every metric here is on 0-1 (higher is better): sacreBLEU's BLEU and chrF, usually quoted on
0-100, are divided by 100 so all of them share one axis in the report and one scale in guards.

    from mason.evaluate.metrics import compute
    corpus, per_row = compute(["rougeL", "bleu"], predictions, references)

The registry `METRICS` maps a name to a factory (rouge-score and sacrebleu are imported only
when their metric is built); third parties add metrics through the `mason.metrics` entry-point
group (a factory returning an object with the `Metric` protocol).
"""

from __future__ import annotations

import difflib
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from mason.core.errors import MasonError, did_you_mean

ENTRY_POINT_GROUP = "mason.metrics"


@runtime_checkable
class Metric(Protocol):
    """A reference-based text metric.

    Attributes:
        name: registry name (`rougeL`).
        description: one line for reports and `--help`.
    """

    name: str
    description: str

    def rows(self, predictions: list[str], references: list[str]) -> list[float]:
        """One score per (prediction, reference) pair, in order."""
        ...

    def corpus(self, predictions: list[str], references: list[str]) -> float:
        """The score of the whole set (the mean of the rows, or a corpus statistic such as BLEU)."""
        ...


# --------------------------------------------------------------------------- normalization

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization: lowercase, drop punctuation, drop English articles, squeeze spaces.

    Punctuation is ASCII punctuation plus every Unicode punctuation character (category P*), so
    `« Paris. »` and `paris` normalize alike.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT and not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _f1(common: int, n_pred: int, n_ref: int) -> float:
    if n_pred == 0 and n_ref == 0:
        return 1.0  # both empty: the prediction is exactly right
    if common == 0:
        return 0.0
    precision, recall = common / n_pred, common / n_ref
    return 2 * precision * recall / (precision + recall)


class _MeanMetric:
    """A metric whose corpus score is the mean of its row scores."""

    name = ""
    description = ""

    def score(self, prediction: str, reference: str) -> float:
        raise NotImplementedError

    def rows(self, predictions: list[str], references: list[str]) -> list[float]:
        return [self.score(p, r) for p, r in zip(predictions, references, strict=True)]

    def corpus(self, predictions: list[str], references: list[str]) -> float:
        scores = self.rows(predictions, references)
        return sum(scores) / len(scores) if scores else 0.0


class ExactMatch(_MeanMetric):
    name = "exact_match"
    description = "1 when the normalized prediction equals the normalized reference (SQuAD normalization)."

    def score(self, prediction: str, reference: str) -> float:
        return float(normalize_answer(prediction) == normalize_answer(reference))


class CharF1(_MeanMetric):
    name = "char_f1"
    description = "F1 of the characters (a multiset, spaces left out) of the normalized prediction and reference."

    def score(self, prediction: str, reference: str) -> float:
        pred = Counter(normalize_answer(prediction).replace(" ", ""))
        ref = Counter(normalize_answer(reference).replace(" ", ""))
        return _f1(sum((pred & ref).values()), sum(pred.values()), sum(ref.values()))


class TokenF1(_MeanMetric):
    name = "token_f1"
    description = "SQuAD F1: overlap of the normalized prediction's and reference's words (a multiset)."

    def score(self, prediction: str, reference: str) -> float:
        pred, ref = Counter(normalize_answer(prediction).split()), Counter(normalize_answer(reference).split())
        return _f1(sum((pred & ref).values()), sum(pred.values()), sum(ref.values()))


class SequenceRatio(_MeanMetric):
    name = "sequence_ratio"
    description = "difflib's SequenceMatcher ratio of the raw strings: 2 * matched characters / total characters."

    def score(self, prediction: str, reference: str) -> float:
        if not prediction and not reference:
            return 1.0
        return difflib.SequenceMatcher(None, prediction, reference, autojunk=False).ratio()


class RougeL(_MeanMetric):
    name = "rougeL"
    description = "ROUGE-L F-measure (longest common subsequence of words, Porter-stemmed; rouge-score)."

    def __init__(self) -> None:
        try:
            from nltk.stem import porter
            from rouge_score import rouge_scorer
        except ImportError:
            raise MasonError("metric rougeL needs rouge-score, which is not installed",
                             hint="pip install rouge-score") from None
        stemmer = porter.PorterStemmer("ORIGINAL_ALGORITHM")

        class _Tokenizer:
            # rouge-score's own tokenizer keeps [a-z0-9] only and drops every accented letter
            # ("été" -> "t"); this one keeps Unicode letters and stems the way it does (> 3 chars)
            def tokenize(self, text: str) -> list[str]:
                words = re.findall(r"[^\W_]+", text.lower())
                return [stemmer.stem(w) if len(w) > 3 else w for w in words]

        self._scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer())

    def score(self, prediction: str, reference: str) -> float:
        return self._scorer.score(reference, prediction)["rougeL"].fmeasure


class _Sacre:
    """BLEU or chrF from sacrebleu: corpus statistics for the set, sentence scores per row."""

    name = ""
    description = ""

    def __init__(self, kind: str) -> None:
        try:
            from sacrebleu.metrics import BLEU, CHRF
        except ImportError:
            raise MasonError(f"metric {self.name} needs sacrebleu, which is not installed",
                             hint="pip install sacrebleu") from None
        if kind == "bleu":
            # effective order for single sentences: a short answer with no 4-gram match is not 0
            self._corpus, self._sentence = BLEU(), BLEU(effective_order=True)
        else:
            self._corpus = self._sentence = CHRF()

    def rows(self, predictions: list[str], references: list[str]) -> list[float]:
        return [self._sentence.sentence_score(p, [r]).score / 100.0
                for p, r in zip(predictions, references, strict=True)]

    def corpus(self, predictions: list[str], references: list[str]) -> float:
        if not predictions:
            return 0.0
        return self._corpus.corpus_score(list(predictions), [list(references)]).score / 100.0


class Bleu(_Sacre):
    name = "bleu"
    description = "sacreBLEU BLEU / 100 (corpus: the set's n-gram statistics; rows: sentence BLEU, effective order)."

    def __init__(self) -> None:
        super().__init__("bleu")


class Chrf(_Sacre):
    name = "chrf"
    description = "sacreBLEU chrF / 100 (character n-grams up to 6, beta 2)."

    def __init__(self) -> None:
        super().__init__("chrf")


#: metric name -> factory (built on first use)
METRICS: dict[str, Callable[[], Metric]] = {
    "rougeL": RougeL,
    "bleu": Bleu,
    "chrf": Chrf,
    "exact_match": ExactMatch,
    "char_f1": CharF1,
    "token_f1": TokenF1,
    "sequence_ratio": SequenceRatio,
}


@lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def metric_names() -> list[str]:
    """Every metric name the registry knows (built-ins first, then entry-point plugins)."""
    return list(METRICS) + [n for n in _plugins() if n not in METRICS]


def get_metric(name: str) -> Metric:
    """Build the metric registered as `name`.

    Raises:
        MasonError: unknown name (closest names suggested), or the metric's library is missing.
    """
    if name in METRICS:
        return METRICS[name]()
    if name in _plugins():
        return _plugins()[name].load()()
    raise MasonError(f"unknown metric '{name}'{did_you_mean(name, metric_names())}",
                     hint=f"metrics: {', '.join(metric_names())}")


def compute(names: list[str], predictions: list[str],
            references: list[str]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Score `predictions` against `references` with each named metric.

    Returns:
        (corpus score by metric, row scores by metric).
    Raises:
        MasonError: see `get_metric`.
    """
    corpus, rows = {}, {}
    for name in names:
        metric = get_metric(name)
        rows[name] = metric.rows(predictions, references)
        corpus[name] = metric.corpus(predictions, references)
    return corpus, rows
