"""The extractive (no-LLM) teacher: grounded, natural, deterministic samples from chunk text."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from mason.core.errors import ConfigError
from mason.generate.config import GenerateConfig
from mason.generate.extractive import ExtractiveGenerator, candidates, select
from mason.generate.extractive_rules import (
    definition_question,
    numeric_question,
    parse_clause,
    verb_question,
)
from mason.generate.extractive_text import change_number, parse_passage, split_sentences
from mason.generate.prompts import PromptLibrary
from mason.generate.tasks.base import GenContext

TEXT = """# CityCycle Operator Handbook

## Overview

CityCycle is a bike-sharing service that operates 1,200 electric bikes in the city centre. Riders unlock a bike with the CityCycle app or a contactless card. Each bike has a 36 V battery that gives a range of about 60 kilometres on one charge.

## Battery swaps

Field technicians swap batteries when the charge drops below 20 percent. A swap takes about 4 minutes and is logged in the depot tablet. Empty batteries are charged in the depot racks, which hold up to 48 batteries at a time.

## Safety checks

Inspect the brakes of every bike at each battery swap. A dock is a steel stand that locks a bike and charges its battery. Broken docks are reported to the maintenance team within 2 hours. If a bike fails the brake test, lock it in the app and tag it for repair. The service was launched on 12 June 2021.

## Frequently asked questions

How much does a ride cost?

A ride costs 1 euro to unlock plus 15 cents per minute. Monthly passes include the first 45 minutes of every ride.
"""
CHUNK = {"id": "chunk-1", "doc": "handbook.md", "doc_sha256": "cd" * 32, "span": [0, len(TEXT)],
         "headings": ["CityCycle Operator Handbook"], "text": TEXT, "n_tokens": 300, "index": 0}


def ctx_for(seed: int = 0, **cfg) -> GenContext:
    return GenContext(client=None, prompts=PromptLibrary(None), cfg=GenerateConfig(**cfg), model_id="extractive",
                      seed=seed)


def run(task: str, n: int = 20, seed: int = 0, chunk: dict = CHUNK, **cfg) -> list[dict]:
    return asyncio.run(ExtractiveGenerator(task).generate(chunk, n, ctx_for(seed, **cfg)))


def sentences_of(text: str) -> set[str]:
    return {s for para in re.split(r"\n\s*\n", text) for s in split_sentences(" ".join(para.split()))}


CHUNK_SENTENCES = sentences_of(TEXT)


def assert_grounded(answer: str) -> None:
    """Every sentence of the answer is a sentence of the chunk, verbatim."""
    for sentence in split_sentences(answer):
        assert sentence in CHUNK_SENTENCES, sentence


# ---------------------------------------------------------------- question answering


def test_questions_are_questions_and_answers_are_chunk_sentences():
    samples = run("question_answering")
    assert len(samples) >= 12
    for s in samples:
        user, assistant = s["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        question = user["content"]
        assert question.endswith("?") and question[0].isupper() and "  " not in question
        assert "?" not in question[:-1] or '"' in question  # one question, except inside a quoted statement
        assert_grounded(assistant["content"])
        assert assistant["content"][0].isupper() and assistant["content"][-1] in ".!?"


def test_sample_shape_and_provenance():
    samples = run("question_answering", n=3, system_prompt="You are the CityCycle assistant.")
    assert len(samples) == 3
    for s in samples:
        assert s["messages"][0] == {"role": "system", "content": "You are the CityCycle assistant."}
        meta = s["meta"]
        assert meta["source"] == {"doc": "handbook.md", "chunk": "chunk-1", "span": [0, len(TEXT)]}
        assert meta["task"] == "question_answering" and meta["teacher"] == "extractive"
        assert len(meta["prompt_hash"]) == 40 and meta["strategy"] in {"faq", "definition", "fact", "detail",
                                                                       "heading", "cloze"}
    assert len({s["id"] for s in samples}) == 3


def test_each_strategy_fires_on_suitable_text():
    pairs = {(s["meta"]["strategy"], s["messages"][0]["content"], s["messages"][1]["content"])
             for s in run("question_answering", n=50)}
    by_question = {q: (strategy, a) for strategy, q, a in pairs}
    assert by_question["How much does a ride cost?"] == (
        "faq", ("A ride costs 1 euro to unlock plus 15 cents per minute. "
                "Monthly passes include the first 45 minutes of every ride."))
    assert by_question["What is a dock?"] == ("definition",
                                              "A dock is a steel stand that locks a bike and charges its battery.")
    assert by_question["What is CityCycle?"][0] == "definition"
    assert by_question["When was the service launched?"] == ("fact", "The service was launched on 12 June 2021.")
    assert by_question["How long does a swap take?"][0] == "fact"
    assert by_question["How quickly are broken docks reported to the maintenance team?"][0] == "fact"
    assert by_question["How do riders unlock a bike?"][0] == "detail"
    assert by_question["What should you do if a bike fails the brake test?"][0] == "detail"
    headings = [q for strategy, q, _ in pairs if strategy == "heading"]
    assert "What does the CityCycle Operator Handbook say about battery swaps?" in headings
    assert 'What does the section "Overview" say about CityCycle?' in headings
    clozes = [(q, a) for strategy, q, a in pairs if strategy == "cloze"]
    assert clozes
    for q, a in clozes:
        statement = q.split('"')[1]
        assert "____" in statement and statement.replace("____", "").split()[0] in a


def test_heading_answers_are_the_sections_key_sentences():
    by_question = {s["messages"][0]["content"]: s["messages"][1]["content"] for s in run("question_answering", 50)}
    answer = by_question["What does the CityCycle Operator Handbook say about battery swaps?"]
    assert answer.startswith("Field technicians swap batteries when the charge drops below 20 percent.")
    assert_grounded(answer)
    assert "dock" not in answer  # nothing from another section


def test_deterministic_for_a_seed_and_varied_across_seeds():
    first = run("question_answering", n=8, seed=3)
    assert first == run("question_answering", n=8, seed=3) == run("question_answering", n=8, seed=3)
    picks = {tuple(s["messages"][0]["content"] for s in run("question_answering", n=5, seed=seed))
             for seed in range(6)}
    assert len(picks) > 1


def test_strategies_are_mixed_and_nothing_is_asked_twice():
    samples = run("question_answering", n=6)
    strategies = [s["meta"]["strategy"] for s in samples]
    assert len(set(strategies)) >= 5  # round-robin over the strategies, best first
    questions = [s["messages"][0]["content"] for s in samples]
    answers = [s["messages"][1]["content"] for s in samples if s["meta"]["strategy"] != "heading"]
    assert len(set(questions)) == len(questions) and len(set(answers)) == len(answers)


def test_text_without_prose_gives_nothing():
    code = {**CHUNK, "text": "```python\nprint('hello')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |", "headings": []}
    assert run("question_answering", chunk=code) == []
    assert run("summarization", chunk=code) == []


# ---------------------------------------------------------------- grammar rules


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("Calibrate the pH sensor every 30 days.", "How often should you calibrate the pH sensor?"),
        ("Firmware 3.2 for the S3 was released on 4 March 2024.", "When was firmware 3.2 for the S3 released?"),
        ("The dissolved oxygen sensing cap lasts two years.", "How long does the dissolved oxygen sensing cap last?"),
        ("Read-only keys may make 600 requests per minute.", "How many requests per minute may read-only keys make?"),
        ("Keys expire after 365 days.", "After how many days do keys expire?"),
        ("The hull is 62 cm in diameter.", "What is the diameter of the hull?"),
        ("A buoy that loses its network stores up to 30 days of readings.",
         "How many days of readings does a buoy that loses its network store?"),
        ("Before deployment, hold the magnetic key against the lid for five seconds.",
         "How long should you hold the magnetic key against the lid before deployment?"),
    ],
)
def test_numeric_questions(sentence, question):
    assert numeric_question(parse_clause(sentence)) == question


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("Webhook payloads are signed with HMAC-SHA256.", "How are webhook payloads signed?"),
        ("Keys are created under Settings in the dashboard.", "Where are keys created?"),
        ("Sudden jumps in turbidity are usually caused by a stuck wiper brush.",
         "What usually causes sudden jumps in turbidity?"),
        ("When a rule fires, AquaSense Cloud sends a POST request to your URL.",
         "What does AquaSense Cloud do when a rule fires?"),
        ("Attach the mooring line to the swivel shackle under the hull.", "Where should you attach the mooring line?"),
        ("Each reading holds the timestamp and the five parameters.", "What does each reading hold?"),
    ],
)
def test_verb_questions(sentence, question):
    assert verb_question(parse_clause(sentence)) == question


@pytest.mark.parametrize(
    "sentence",
    [
        "It records five parameters: temperature, pH and turbidity.",  # pronoun subject
        "Anchors are not included in the box.",  # negation
        "This policy applies to every employee.",  # refers back
        "If it is enabled, the buoy switches to 5 minute sampling.",  # condition with a pronoun
    ],
)
def test_unsure_sentences_get_no_question(sentence):
    clause = parse_clause(sentence)
    assert clause is None or not any(f(clause) for f in (definition_question, numeric_question, verb_question))


def test_definitions():
    assert definition_question(parse_clause("A station is one deployed buoy.")) == "What is a station?"
    assert definition_question(parse_clause("Status 401 means the key has expired.")) == "What does status 401 mean?"
    assert definition_question(parse_clause("Ice on the water is a no-go condition.")) is None


# ---------------------------------------------------------------- other task types


def test_reasoning_and_tool_calling_need_an_llm():
    for task in ("reasoning", "tool_calling"):
        with pytest.raises(ConfigError, match=f"`{task}` needs an LLM teacher"):
            ExtractiveGenerator(task)


def test_summarization_is_lead_sentences_of_the_passage():
    samples = run("summarization", n=2)
    assert 1 <= len(samples) <= 2
    for s in samples:
        user, assistant = s["messages"]
        instruction, passage = user["content"].split("\n\n", 1)
        assert instruction.endswith((".", "?")) and passage == TEXT.strip()
        assert_grounded(assistant["content"])
        assert len(assistant["content"].split()) < 0.6 * len(TEXT.split())
    assert samples[0]["messages"][1]["content"].startswith("CityCycle is a bike-sharing service")
    assert samples[0]["meta"]["task"] == "summarization"


def test_summarization_skips_a_passage_too_short_to_condense():
    short = {**CHUNK, "text": "CityCycle operates 1,200 electric bikes in the city centre.", "headings": []}
    assert run("summarization", chunk=short) == []


def test_preference_chosen_is_grounded_and_rejected_differs():
    samples = run("preference", n=8)
    assert len(samples) == 8
    flaws = set()
    for s in samples:
        assert [m["role"] for m in s["messages"]] == ["user"] and s["messages"][0]["content"].endswith("?")
        chosen, rejected = s["chosen"]["content"], s["rejected"]["content"]
        assert_grounded(chosen)
        assert chosen != rejected
        flaws.add(s["meta"]["flaw"])
        if s["meta"]["flaw"] == "wrong_detail":
            assert rejected not in TEXT  # a changed number makes it false
        else:
            assert s["meta"]["flaw"] == "unrelated" and rejected in CHUNK_SENTENCES and rejected not in chosen
    assert "wrong_detail" in flaws


def test_change_number_changes_the_asked_number_plausibly():
    rng = random.Random(0)
    changed = change_number("A swap takes about 4 minutes.", rng)
    assert changed is not None and changed != "A swap takes about 4 minutes." and "minutes" in changed
    assert change_number("Replace the brush every six months.", rng) in {
        f"Replace the brush every {w} months." for w in ("four", "five", "seven", "eight")}
    # numbers that name things are left alone
    assert change_number("Timestamps are given in ISO 8601.", rng) is None


def test_multi_turn_is_two_grounded_exchanges():
    samples = run("multi_turn", n=3)
    assert len(samples) == 3
    for s in samples:
        roles = [m["role"] for m in s["messages"]]
        assert roles == ["user", "assistant", "user", "assistant"] and s["meta"]["turns"] == 2
        first, second = s["messages"][1]["content"], s["messages"][3]["content"]
        assert_grounded(first) and assert_grounded(second)
        assert first not in second and second not in first
        assert s["messages"][2]["content"].endswith("?")
        assert "____" not in s["messages"][0]["content"] + s["messages"][2]["content"]  # no cloze turns


def test_plain_text_faq_without_headings():
    text = ("Support FAQ\n\nHow long does the battery last?\n\nA fully charged bike runs for 3 days without "
            "charging. Heavy use shortens this.\n\nCan I ride in the rain?\n\nYes. The bikes are rated IP65 "
            "and can be ridden in rain.")
    chunk = {**CHUNK, "text": text, "headings": []}
    passage = parse_passage(text, [])
    assert passage.title == "Support FAQ" and [s.faq for s in passage.sections] == [True, True]
    faq = {qa.question: qa.answer for qa in select(candidates(passage, random.Random(0)), 10, random.Random(0))
           if qa.strategy == "faq"}
    assert faq == {"How long does the battery last?":
                   "A fully charged bike runs for 3 days without charging. Heavy use shortens this.",
                   "Can I ride in the rain?": "Yes. The bikes are rated IP65 and can be ridden in rain."}
    assert all(s["messages"][0]["content"].endswith("?") for s in run("question_answering", chunk=chunk))
