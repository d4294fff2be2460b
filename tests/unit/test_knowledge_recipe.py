"""The knowledge recipe on fixed text: key spans, facts, training views and held-out questions
(exact outputs), and held-out questions never repeat training text."""

from __future__ import annotations

from mason.data.contamination import contamination
from mason.generate.knowledge import build, extract_facts, heldout_questions, key_spans

TEXT = """# Harbor History

## Bridges

Mara Velt designed the Osk Bridge in 1987. The Osk Bridge is 340 metres long and carries 12,000 cars per day.
It was repainted later.

## Ferries

The first ferry to Marlow Island leaves at 06:40 from pier 3. Adults pay 4.20 euros per crossing.
"""
CHUNK = {"id": "c1", "doc": "history.md", "text": TEXT, "headings": ["Harbor History"], "span": [0, len(TEXT)]}


def _spans(sentence: str) -> list[tuple[str, str, str]]:
    return [(s.text, s.kind, s.phrase) for s in key_spans(sentence)]


def test_key_spans() -> None:
    assert _spans("Mara Velt designed the Osk Bridge in 1987.") == [
        ("Mara Velt", "name", "Mara Velt"), ("Osk Bridge", "name", "the Osk Bridge"), ("1987", "year", "1987")]
    assert _spans("The Osk Bridge is 340 metres long and carries 12,000 cars per day.") == [
        ("Osk Bridge", "name", "the Osk Bridge"), ("340 metres", "number", "340 metres"),
        ("12,000 cars", "number", "12,000 cars")]
    # a month is no name, a sentence-opening common word is no name
    assert _spans("In March 2024 the Port of Ardel opened a quay.") == [
        ("2024", "year", "2024"), ("Port of Ardel", "name", "the Port of Ardel")]
    assert _spans("Adults pay 4.20 euros per crossing.") == [("4.20 euros", "number", "4.20 euros")]


def test_facts_skip_pronoun_sentences_and_sentences_without_a_key_span() -> None:
    facts = extract_facts(CHUNK)
    assert [f.sentence for f in facts] == [
        "Mara Velt designed the Osk Bridge in 1987.",
        "The Osk Bridge is 340 metres long and carries 12,000 cars per day.",
        "The first ferry to Marlow Island leaves at 06:40 from pier 3.",
        "Adults pay 4.20 euros per crossing.",
    ]
    assert facts[0].heading == "Bridges" and facts[0].title == "Harbor History"


def test_heldout_questions_direct_and_reversed() -> None:
    facts = {f.sentence: f for f in extract_facts(CHUNK)}
    velt = heldout_questions(facts["Mara Velt designed the Osk Bridge in 1987."])
    assert [(q["messages"][0]["content"], q["meta"]["answers"], q["meta"]["question_type"]) for q in velt] == [
        ("According to Harbor History, who or what goes with the Osk Bridge and 1987?", ["Mara Velt"], "reversed")]
    fares = heldout_questions(facts["Adults pay 4.20 euros per crossing."])
    assert [(q["messages"][0]["content"], q["meta"]["answers"], q["meta"]["question_type"]) for q in fares] == [
        ("How many euros per crossing do adults pay?", ["4.20 euros"], "direct")]
    for q in velt + fares:
        assert q["meta"]["split"] == "eval" and q["messages"][-1]["content"] in TEXT


def test_training_views_cover_every_span_in_both_directions() -> None:
    made = build([CHUNK], questions_per_span=2, framings=3, seed=0)
    fact = next(s["meta"]["fact"] for s in made.train
                if s["messages"][-1]["content"] == "Mara Velt designed the Osk Bridge in 1987.")
    velt = [s for s in made.train if s["meta"]["fact"] == fact and s["meta"]["view"] != "text"
            or s["meta"]["fact"] == fact and "Osk Bridge is" not in s["messages"][0]["content"]]
    views = sorted(s["meta"]["view"] for s in velt)
    assert views == ["complete"] + ["entity"] * 6 + ["text"] * 3  # 3 spans x 2 questions, 3 framings
    asked = " ".join(s["messages"][0]["content"] for s in velt if s["meta"]["view"] == "entity")
    assert "Mara Velt" in asked and "the Osk Bridge" in asked and "1987" in asked
    texts = [s["messages"][0]["content"] for s in velt if s["meta"]["view"] == "text"]
    assert texts == ["Mara Velt designed the Osk Bridge in 1987.",
                     "Harbor History: Mara Velt designed the Osk Bridge in 1987.",
                     "Bridges. Mara Velt designed the Osk Bridge in 1987."]
    assert all(len(s["messages"]) == 1 and s["messages"][0]["role"] == "assistant" for s in made.train
               if s["meta"]["view"] == "text")  # plain text: no prompt
    paragraphs = [s for s in made.train if s["messages"][0]["content"].startswith("Mara Velt designed the Osk Bridge "
                                                                                  "in 1987. The Osk")]
    assert len(paragraphs) == 1
    assert made.report["facts"] == 4 and made.report["documents"] == 1
    assert made.report["views"]["entity"] == 2 * 9  # 3 + 3 + 2 + 1 key spans in the four facts


def test_heldout_questions_never_repeat_training_text() -> None:
    made = build([CHUNK], seed=0)
    train_questions = {s["messages"][0]["content"] for s in made.train}
    assert made.eval and not train_questions & {q["messages"][0]["content"] for q in made.eval}
    assert contamination(made.train, made.eval)["contaminated"] == 0


def test_documents_held_out_whole_get_questions_but_no_training_view() -> None:
    made = build([CHUNK], heldout_docs=frozenset({"history.md"}))
    assert made.train == [] and made.eval
    assert made.report["facts"] == 4


def test_build_is_deterministic_for_a_seed() -> None:
    assert [s["id"] for s in build([CHUNK], seed=3).train] == [s["id"] for s in build([CHUNK], seed=3).train]


def test_invented_entities_recombine_names_and_appear_in_no_document() -> None:
    import random

    from mason.generate.knowledge import invented_entities

    facts = extract_facts(CHUNK)
    # multi-word names of the facts: Mara Velt, Osk Bridge, Marlow Island
    made = invented_entities(facts, 5, random.Random(0), corpus=TEXT)
    assert len(made) == 5 == len(set(made)) and len({e.split()[0] for e in made[:3]}) == 3  # varied first
    for entity in made:
        head, kind = entity.split()
        assert head in {"Mara", "Osk", "Marlow"} and kind in {"Velt", "Bridge", "Island"}
        assert entity.lower() not in TEXT.lower()


def test_unknown_questions_check_and_teach_declining() -> None:
    made = build([CHUNK], unknown=2, declines=2)
    unknown = [q for q in made.eval if q["meta"]["question_type"] == "unknown"]
    lessons = [s for s in made.train if s["meta"]["view"] == "decline"]
    assert len(unknown) == 2 and len(lessons) == 2
    assert all(q["meta"]["expect"] == "decline" and "answers" not in q["meta"] for q in unknown)
    asked = {q["messages"][0]["content"] for q in unknown}
    taught = {s["messages"][0]["content"] for s in lessons}
    assert not asked & taught
    from mason.evaluate.knowledge import declines

    assert all(declines(s["messages"][-1]["content"]) for s in lessons)
    assert made.report["views"]["decline"] == 2 and made.report["heldout_questions"]["unknown"] == 2
    assert not [q for q in build([CHUNK]).eval if q["meta"]["question_type"] == "unknown"]  # off by default
