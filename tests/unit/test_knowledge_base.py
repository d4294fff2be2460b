"""The fictional knowledge base of the closed-book QA benchmark (bench/knowledge_base.yaml):
it validates, its questions do not copy their sentences, answers are scored as whole words, and
every document written in its format parses back with all its fact sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.knowledge_base import (
    DEFAULT,
    QUESTION_TYPES,
    KnowledgeBase,
    is_abstention,
    is_correct,
    load,
    normalize,
    questions,
    write_documents,
)
from mason.data.grounding import content_terms
from mason.ingest.parsers import parse_document

@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def test_loads_with_enough_facts_documents_and_formats(kb: KnowledgeBase) -> None:
    assert len(kb.facts) >= 36
    assert len(kb.documents) >= 7
    assert {d.format for d in kb.documents} >= {"md", "html", "docx", "pdf", "pptx", "txt"}
    assert {f.doc for f in kb.facts} == {d.name for d in kb.documents}, "every document states facts"
    assert len(list(questions(kb, ["reversed"]))) >= 12
    assert all(sum(q.type == "direct" for q in f.questions) == 1 for f in kb.facts)
    assert len(kb.unknown) >= 8 and len(kb.known) >= 12
    assert all(sentence.isascii() for d in kb.documents for s in d.sections for sentence in s.paragraphs)


def test_questions_are_reworded_not_copied(kb: KnowledgeBase) -> None:
    for fact, question in questions(kb, QUESTION_TYPES):
        q_terms, s_terms = set(content_terms(question.q)), set(content_terms(fact.sentence))
        jaccard = len(q_terms & s_terms) / len(q_terms | s_terms)
        assert jaccard < 0.7, (fact.id, question.q, round(jaccard, 2))
        # not the sentence with a wh-phrase swapped in ("Which cheese ripens for 14 weeks ..."):
        # without its first 1-3 words, the question is no part of the sentence, nor the reverse
        words, sentence = normalize(question.q).split(), normalize(fact.sentence)
        tails = [" ".join(words[k:]) for k in (1, 2, 3) if len(words) - k >= 4]
        assert not any(tail in sentence for tail in tails), (fact.id, question.q)
        assert sentence not in normalize(question.q), (fact.id, question.q)


def test_answers_are_in_sentences_and_not_in_questions(kb: KnowledgeBase) -> None:
    for fact, question in questions(kb):
        assert is_correct(fact.sentence, question.answers), (fact.id, question.q)
        assert not is_correct(question.q, question.answers), (fact.id, question.q)
    for probe in kb.known:
        assert probe.answers


def test_load_rejects_a_sentence_missing_from_its_document(tmp_path: Path) -> None:
    text = DEFAULT.read_text(encoding="utf-8")
    bad = tmp_path / "kb.yaml"
    bad.write_text(text.replace("sentence: The Saltwren Bridge opened in 1881.",
                                "sentence: The Saltwren Bridge opened in 1882."), encoding="utf-8")
    with pytest.raises(ValueError, match="fact h04: sentence .* does not occur verbatim"):
        load(bad)
    bad.write_text(text.replace('answers: ["1881"]', 'answers: ["1880"]'), encoding="utf-8")
    with pytest.raises(ValueError, match="fact h04: answer '1880' does not occur"):
        load(bad)
    bad.write_text(text.replace("id: h05", "id: h04"), encoding="utf-8")
    with pytest.raises(ValueError, match="fact h04: duplicate id"):
        load(bad)


def test_normalize_keeps_numbers_and_drops_punctuation() -> None:
    assert normalize("  It costs 4.20 EUR, or 1,500 cents!  ") == "it costs 4.20 eur or 1500 cents"
    assert normalize("Ｈalvesk’s “bridge” – 1881.") == "halvesk s bridge 1881"


@pytest.mark.parametrize(("answer", "accepted", "expected"), [
    ("It lifts 340 litres per second.", ["340 litres"], True),
    ("The bridge opened in 1987.", ["1987"], True),
    ("The bridge opened in 19870.", ["1987"], False),
    ("It opened in 198.", ["1987"], False),
    ("About 1500 people.", ["1,500"], True),
    ("About 1,500 people.", ["1500"], True),
    ("About 1,5000 people.", ["1,500"], False),
    ("A ticket costs 4.20 euros.", ["4.20"], True),
    ("A ticket costs 4.205 euros.", ["4.20"], False),
    ("It was designed by MARA VELT.", ["Mara Velt"], True),
    ("It was designed by Mara Veltman.", ["Mara Velt"], False),
    ("Dark-green wax.", ["dark green"], True),
    ("Green wax.", ["dark green"], False),
    ("I am not sure.", ["1742", "Halvesk"], False),
    ("Anything", [], False),
    ("Anything", [""], False),
])
def test_is_correct(answer: str, accepted: list[str], expected: bool) -> None:
    assert is_correct(answer, accepted) is expected


def test_is_abstention() -> None:
    assert is_abstention("I'm sorry, I don't know who designed it.")
    assert is_abstention("There is no information about that bridge.")
    assert not is_abstention("The Pellham Bridge was designed by Anna Brook in 1902.")


def test_written_documents_parse_back_with_every_fact_sentence(kb: KnowledgeBase, tmp_path: Path) -> None:
    paths = write_documents(kb, tmp_path)
    assert [p.name for p in paths] == [d.name for d in kb.documents]
    for doc, path in zip(kb.documents, paths, strict=True):
        assert path.is_file() and path.stat().st_size > 0
        text = " ".join(parse_document(path).text.split())  # PDF lines re-wrap: compare whitespace-collapsed
        assert doc.title in text, doc.name
        for fact in (f for f in kb.facts if f.doc == doc.name):
            assert fact.sentence in text, (doc.name, fact.id)


def test_context_is_the_section_of_the_fact(kb: KnowledgeBase) -> None:
    fact = next(f for f in kb.facts if f.id == "g05")
    context = kb.context(fact)
    assert context.startswith("The telescope\n\n") and fact.sentence in context
    assert "Tamsel Hill" not in context
