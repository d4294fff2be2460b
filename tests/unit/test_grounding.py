"""Lexical grounding: content words, stemming, exact numbers, verbatim spans."""

from __future__ import annotations

import pytest

from mason.data.grounding import (
    content_terms,
    grounding_evidence,
    lexical_support,
    longest_common_span,
    stem,
)

SOURCE = ("The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall and "
          "was designed by the engineering company of Gustave Eiffel. Painting the tower requires "
          "60 tonnes of paint every seven years.")


def test_fully_supported_paraphrase():
    answer = "Gustave Eiffel's company designed the tower, which was completed in 1889 and is 330 metres tall."
    assert lexical_support(answer, SOURCE) == 1.0


def test_unsupported_words_lower_the_share():
    answer = "The tower was designed by Gustave Eiffel and is made of Swedish granite."
    support = lexical_support(answer, SOURCE)
    # content terms: tower, designed, gustave, eiffel, made, swedish, granite -> 4 of 7
    assert support == pytest.approx(4 / 7)


def test_numbers_must_match_exactly():
    assert lexical_support("It was completed in 1889.", SOURCE) == 1.0
    assert lexical_support("It was completed in 1890.", SOURCE) == pytest.approx(1 / 2)
    assert lexical_support("It is 330.5 metres tall.", SOURCE) < 1.0
    # thousands separators are not part of the claim
    assert lexical_support("It cost 1,200 francs.", "It cost 1200 francs.") == 1.0
    evidence = grounding_evidence("It needs 70 tonnes of paint every seven years.", SOURCE)
    assert evidence.unsupported_numbers == ["70"]


def test_stopwords_case_accents_and_stemming():
    assert lexical_support("PAINTING requires tonnes", SOURCE) == 1.0
    assert lexical_support("The tower is painted every seven years.", SOURCE) == 1.0  # painted ~ painting
    assert lexical_support("Les données sont publiées.", "Donnees publiees en 2020.") == 1.0
    assert stem("studies") == stem("studied") == stem("study")
    assert stem("running") == stem("run")
    assert "the" not in content_terms("The tower")


def test_edge_cases():
    assert lexical_support("Yes, it is.", SOURCE) == 1.0  # nothing to check
    assert lexical_support("The tower is tall.", "") == 0.0
    assert lexical_support("", SOURCE) == 1.0


def test_longest_common_span():
    quote = "was designed by the engineering company of Gustave Eiffel"
    assert longest_common_span(f"In short, it {quote}.", SOURCE) == 9
    assert longest_common_span("Swedish granite blocks", SOURCE) == 0
    evidence = grounding_evidence(quote, SOURCE)
    assert evidence.longest_span == 9
    assert evidence.span_share == 1.0
    assert evidence.support == 1.0
    assert evidence.unsupported == []
