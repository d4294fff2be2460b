"""Each evaluation metric against values worked out by hand on small strings."""

from __future__ import annotations

import math

import pytest

from mason.core.errors import MasonError
from mason.evaluate.generation import ModelAnswers, latency_summary, percentile
from mason.evaluate.metrics import compute, get_metric, metric_names, normalize_answer


def one(name: str, prediction: str, reference: str) -> float:
    metric = get_metric(name)
    row = metric.rows([prediction], [reference])[0]
    assert metric.corpus([prediction], [reference]) == pytest.approx(row)  # one row: corpus == sentence
    return row


def test_normalize_answer_is_squad_normalization():
    # lowercase, punctuation out (ASCII and Unicode), articles out, spaces squeezed
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("« Paris. »") == "paris"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # "the" only as a word


def test_exact_match():
    assert one("exact_match", "The  Paris!", "paris") == 1.0  # -> "paris" both sides
    assert one("exact_match", "Paris, France", "Paris") == 0.0


def test_char_f1():
    # "abc" vs "abd": common multiset {a, b} = 2; P = 2/3, R = 2/3, F1 = 2/3
    assert one("char_f1", "abc", "abd") == pytest.approx(2 / 3)
    # "the cat" -> "cat"; "cats" -> "cats": common {c, a, t} = 3, P = 3/3, R = 3/4 -> F1 = 2*1*.75/1.75 = 6/7
    assert one("char_f1", "the cat", "cats") == pytest.approx(6 / 7)
    assert one("char_f1", "", "") == 1.0
    assert one("char_f1", "xyz", "abc") == 0.0


def test_token_f1():
    # pred words {cat, sat, on, mat}, ref {cat, lay, on, mat} (articles dropped): common 3, P = R = 3/4
    assert one("token_f1", "the cat sat on the mat", "the cat lay on the mat") == pytest.approx(0.75)


def test_sequence_ratio():
    # difflib: 2 * M / T; "abcd" vs "abed": matching blocks "ab" + "d" = 3, T = 8 -> 6/8
    assert one("sequence_ratio", "abcd", "abed") == pytest.approx(0.75)
    assert one("sequence_ratio", "", "") == 1.0


def test_rouge_l():
    # LCS of [the, cat, sat, on, the, mat] and [the, cat, lay, on, the, mat] = 5 words; P = R = 5/6
    assert one("rougeL", "the cat sat on the mat", "the cat lay on the mat") == pytest.approx(5 / 6)
    # Porter stemming: "running cats" ~ "run cat" -> [run, cat] both sides
    assert one("rougeL", "running cats", "run cat") == pytest.approx(1.0)


def test_rouge_l_keeps_accented_words():
    # rouge-score's default tokenizer would turn "été" into "t"; ours keeps it: LCS [été, chaud] = 2,
    # P = 2/2, R = 2/4 -> F = 2 * 1 * .5 / 1.5 = 2/3
    assert one("rougeL", "été chaud", "un été très chaud") == pytest.approx(2 / 3)


def test_bleu():
    # pred "the cat sat on a mat", ref "the cat sat on the mat" (6 tokens each, brevity penalty 1):
    # 1-grams 5/6, 2-grams 3/5 (the cat, cat sat, sat on), 3-grams 2/4, 4-grams 1/3
    # BLEU = (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = 0.53728...
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert one("bleu", "the cat sat on a mat", "the cat sat on the mat") == pytest.approx(expected)
    assert one("bleu", "the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)


def test_bleu_corpus_pools_ngram_statistics():
    # corpus BLEU is not the mean of sentence BLEUs: it pools counts over the rows
    metric = get_metric("bleu")
    preds, refs = ["the cat sat on a mat", "a b c d"], ["the cat sat on the mat", "a b c d"]
    rows = metric.rows(preds, refs)
    # pooled: 1-grams (5+4)/(6+4), 2-grams (3+3)/(5+3), 3-grams (2+2)/(4+2), 4-grams (1+1)/(3+1)
    pooled = (9 / 10 * 6 / 8 * 4 / 6 * 2 / 4) ** 0.25
    assert metric.corpus(preds, refs) == pytest.approx(pooled)
    assert metric.corpus(preds, refs) != pytest.approx(sum(rows) / 2)


def test_chrf():
    # chrF (char n-grams 1..6, beta 2, averaged over the orders both sides have):
    # "abc" vs "abd": 1-grams P = R = 2/3, 2-grams {ab, bc} vs {ab, bd}: 1/2, 3-grams 0/1
    # mean P = mean R = (2/3 + 1/2 + 0) / 3 = 7/18, F_beta(P = R) = 7/18
    assert one("chrf", "abc", "abd") == pytest.approx(7 / 18)
    assert one("chrf", "abc", "abc") == pytest.approx(1.0)


def test_compute_returns_corpus_and_rows():
    corpus, rows = compute(["exact_match", "char_f1"], ["a", "b"], ["a", "c"])
    assert corpus == {"exact_match": 0.5, "char_f1": 0.5}
    assert rows == {"exact_match": [1.0, 0.0], "char_f1": [1.0, 0.0]}


def test_unknown_metric_suggests_the_closest_name():
    with pytest.raises(MasonError, match="did you mean 'rougeL'"):
        get_metric("rougel")
    assert {"rougeL", "bleu", "chrf", "exact_match", "char_f1", "sequence_ratio"} <= set(metric_names())


def test_percentile_interpolates_like_numpy():
    # [1, 2, 3, 4]: p50 at rank 1.5 -> 2.5; p95 at rank 2.85 -> 3 + 0.85 = 3.85
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.95) == pytest.approx(3.85)
    assert percentile([], 0.5) is None


def test_latency_summary():
    answers = ModelAnswers("tuned", {}, predictions=["a", "b"], prompt_tokens=[5, 5], output_tokens=[10, 30],
                           seconds=[1.0, 3.0])
    s = latency_summary(answers)
    # p50 of [1, 3] = 2, p95 = 1 + 0.95 * 2 = 2.9, tokens/s = 40 tokens / 4 s
    assert s == {"latency_p50": 2.0, "latency_p95": pytest.approx(2.9), "latency_mean": 2.0,
                 "tokens_per_second": 10.0}
    assert math.isclose(s["latency_p95"], 2.9)
