"""The extractive teacher: grounded samples built straight from a chunk's text, with no LLM.

This is what the offline quickstart trains on, so every answer is copied from the chunk
(one or more of its sentences, verbatim) and every question is written by grammar rules that
would rather skip a sentence than produce a clumsy question. Strategies, best first:

- `faq`: a question line of the document (a FAQ heading) and the paragraph that answers it;
- `definition`: "X is a Y" -> "What is X?" (also "X means", "X is used to");
- `fact`: numbers and dates -> how often / how long / how many / when questions;
- `detail`: how / where / when / what questions from the verb ("signed with" -> "How ...?");
- `heading`: "What does the <document> say about <section>?" answered with the section's key
  sentences;
- `cloze`: a sentence with a key term blanked out, answered with the full sentence.

Task types: `question_answering`, `multi_turn` (two QA pairs as two turns), `preference`
(chosen = the grounded answer, rejected = the same answer with a changed number, or a sentence
from another part of the text) and `summarization` (lead sentences as an extractive summary).
`reasoning` and `tool_calling` need an LLM teacher. Output is deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mason.core.errors import ConfigError, Problem
from mason.core.hashing import stable_hash, text_sha1
from mason.generate import extractive_rules as rules
from mason.generate.extractive_text import (
    Passage,
    Section,
    change_number,
    cloze_term,
    content_words,
    good_answer_sentence,
    key_sentences,
    parse_passage,
    starts_with_pronoun,
)
from mason.generate.tasks.base import GenContext, make_sample, normalize, source_of

RULES_VERSION = 1  # part of every extractive prompt_hash: bump when the rules change their output
STRATEGIES = ("faq", "definition", "fact", "detail", "heading", "cloze")
EXTRACTIVE_TASKS = ("question_answering", "multi_turn", "preference", "summarization")
_GENERIC_HEADINGS = frozenset("overview introduction summary highlights background details notes general fixes "
                              "errors faq scope purpose contents abstract conclusion".split())
_SUMMARY_ASKS = ("Summarize the following text.", "Give a short summary of this passage.",
                 "What are the main points of the following text?", "Write a brief summary of the text below.")
_ONE_SENTENCE_ASKS = ("Summarize the following text in one sentence.", "Give a one-sentence summary of this passage.")


@dataclass(frozen=True)
class QA:
    """One extractive question-answer pair.

    Attributes:
        question: the question (ends with '?').
        answer: verbatim sentence(s) of the chunk.
        strategy: which strategy made it (one of STRATEGIES).
        section: index of the section the answer comes from.
        key: the main answer sentence; two pairs with the same key are never both used.
    """

    question: str
    answer: str
    strategy: str
    section: int
    key: str


def _needs_llm(task: str) -> ConfigError:
    return ConfigError([Problem(
        "synthetic_data.task_type",
        f"`{task}` needs an LLM teacher; the extractive teacher makes only {', '.join(EXTRACTIVE_TASKS)}. "
        "Set `synthetic_data.teacher` to a model (e.g. `ollama/llama3.1`, `smollm2-135m-instruct`) "
        f"or remove `{task}` from `task_type`.",
    )])


def _answer_for(sentences: list[str], k: int) -> str | None:
    """Sentence k as a self-contained answer: with the one before when it opens with a pronoun."""
    s = sentences[k]
    if not good_answer_sentence(s):
        return None
    if starts_with_pronoun(s):
        return f"{sentences[k - 1]} {s}" if k > 0 and good_answer_sentence(sentences[k - 1]) else None
    return s


def _faq_pairs(passage: Passage) -> list[QA]:
    out = []
    for i, sec in enumerate(passage.sections):
        if not sec.faq or sec.heading is None:
            continue
        sentences = sec.paragraphs[0].sentences[:3]
        answer = " ".join(sentences)
        if len(answer.split()) >= 5 and answer[-1:] in ".!?":
            out.append(QA(sec.heading, answer, "faq", i, answer))
    return out


def _sentence_pairs(passage: Passage) -> dict[str, list[QA]]:
    found: dict[str, list[QA]] = {"definition": [], "fact": [], "detail": []}
    makers: tuple[tuple[str, Callable[[rules.Clause], str | None]], ...] = (
        ("definition", rules.definition_question), ("fact", rules.numeric_question), ("detail", rules.verb_question))
    for si, sec in enumerate(passage.sections):
        for p in sec.paragraphs:
            for k, s in enumerate(p.sentences):
                answer = _answer_for(p.sentences, k)
                clause = rules.parse_clause(s, passage.proper) if answer else None
                if clause is None or answer is None:
                    continue
                for strategy, make in makers:
                    question = make(clause)
                    if question:
                        found[strategy].append(QA(question, answer, strategy, si, s))
    return found


def _lower_heading(heading: str, passage: Passage) -> str:
    words = heading.split()
    return " ".join(w.lower() if w[:1].isupper() and w[1:].islower() and w not in passage.proper else w
                    for w in words)


def _about(title: str) -> str:
    # "the ... Release Notes" are plural: "What do the release notes say"
    last = title.split()[-1]
    return f"What {'do' if last.endswith('s') and not last.endswith('ss') else 'does'} the {title} say"


def _heading_pair(passage: Passage, i: int, sec: Section) -> QA | None:
    sentences = [s for p in sec.paragraphs for s in p.sentences]
    answer = key_sentences(sentences, sec.heading)
    if sec.faq or sec.heading is None or len(sentences) < 2 or not answer:
        return None
    heading = sec.heading
    if heading.lower() in _GENERIC_HEADINGS:
        # "Overview" is no topic: ask about what its first sentence is about
        clause = rules.parse_clause(answer[0], passage.proper)
        if clause is not None and clause.subject and clause.subject.lower() != heading.lower():
            question = f'What does the section "{heading}" say about {clause.subject}?'
        elif passage.title:
            question = f'What does the section "{heading}" of the {passage.title} say?'
        else:
            return None
    elif passage.title:
        question = f"{_about(passage.title)} about {_lower_heading(heading, passage)}?"
    else:
        question = f'What does the section "{heading}" say about {_lower_heading(heading, passage)}?'
    return QA(question, " ".join(answer), "heading", i, " ".join(answer))


def _cloze_pairs(passage: Passage, rng: random.Random) -> list[QA]:
    where = f"the {passage.title}" if passage.title else "the documentation"
    out = []
    for si, _, _, s in passage.sentences():
        if not good_answer_sentence(s) or starts_with_pronoun(s) or len(s.split()) < 8:
            continue
        term = cloze_term(s, rng)
        if term is None:
            continue
        blanked = s.replace(term, "____", 1).rstrip(".!")
        out.append(QA(f'In {where}, what completes this statement: "{blanked}"?', s, "cloze", si, s))
    return out


def candidates(passage: Passage, rng: random.Random) -> dict[str, list[QA]]:
    """Every QA pair each strategy finds in `passage`, by strategy."""
    found = {"faq": _faq_pairs(passage), **_sentence_pairs(passage)}
    found["heading"] = [qa for i, sec in enumerate(passage.sections)
                        if (qa := _heading_pair(passage, i, sec)) is not None]
    found["cloze"] = _cloze_pairs(passage, rng)
    return found


def select(found: dict[str, list[QA]], n: int, rng: random.Random, *, skip: tuple[str, ...] = ()) -> list[QA]:
    """Up to `n` pairs, taking strategies in turn (best first) so the kinds stay mixed.

    Within a strategy the order is shuffled by `rng`; no answer sentence and no question is used twice.
    """
    pools = {s: rng.sample(found.get(s, []), len(found.get(s, []))) for s in STRATEGIES if s not in skip}
    # a sentence belongs to the best strategy that has a question for it ("When was X launched?"
    # rather than a cloze of the same sentence)
    claimed: set[str] = set()
    for s, pool in pools.items():
        pools[s] = [qa for qa in pool if qa.key not in claimed]
        claimed |= {qa.key for qa in pool}
    out: list[QA] = []
    used: set[str] = set()
    while len(out) < n and any(pools.values()):
        for pool in pools.values():
            while pool and len(out) < n:
                qa = pool.pop(0)
                keys = {"a:" + normalize(qa.key), "q:" + normalize(qa.question)}
                if keys & used:
                    continue
                used |= keys
                out.append(qa)
                break
    return out


def _other_part(passage: Passage, qa: QA, rng: random.Random) -> str | None:
    """A sentence from elsewhere in the passage that shares little with the answer."""
    answer_words = content_words(qa.answer) | content_words(qa.question)
    pool = [(si == qa.section, len(content_words(s) & answer_words), s) for si, _, _, s in passage.sentences()
            if s not in qa.answer and good_answer_sentence(s) and not starts_with_pronoun(s)]
    # prefer another section, then the least overlap: a clearly wrong but fluent answer
    far = sorted(item for item in pool if item[1] <= 1)
    return rng.choice(far[:5])[2] if far else None


def _summary(passage: Passage) -> tuple[list[str], int]:
    """Lead sentences (the first good one of each paragraph) and the passage's word count.

    The reader of a summary has the passage, so "This policy applies..." may be a lead, but the
    summary itself never opens with a pronoun.
    """
    leads, total = [], 0
    for sec in passage.sections:
        for p in sec.paragraphs:
            total += sum(len(s.split()) for s in p.sentences)
            lead = next((s for s in p.sentences if good_answer_sentence(s)
                         and (leads or not starts_with_pronoun(s) or s.split()[0] in ("This", "These"))), None)
            if lead is not None:
                leads.append(lead)
    return leads, total


class ExtractiveGenerator:
    """Grounded samples of one task type from chunk text, without a teacher model.

    Attributes:
        name: the task type it makes (one of EXTRACTIVE_TASKS).
    """

    def __init__(self, task: str = "question_answering"):
        """Raises ConfigError for a task that needs an LLM (`reasoning`, `tool_calling`) or is unknown."""
        if task not in EXTRACTIVE_TASKS:
            raise _needs_llm(task)
        self.name = task

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` samples from `chunk` (see `generate_sync`); async to fit TaskGenerator."""
        return self.generate_sync(chunk, n, ctx)

    def generate_sync(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` samples from `chunk`, the same ones for the same chunk, task and `ctx.seed`.

        Returns fewer (or none) when the text has too little that the rules can use.
        """
        key = chunk.get("id") or text_sha1(chunk["text"])
        rng = random.Random(int(stable_hash([ctx.seed, key, self.name]), 16))
        passage = parse_passage(chunk["text"], chunk.get("headings"))
        build = {"question_answering": self._qa, "multi_turn": self._multi_turn,
                 "preference": self._preference, "summarization": self._summarization}[self.name]
        return build(passage, chunk, n, ctx, rng)

    def _sample(self, messages: list[dict[str, Any]], chunk: dict[str, Any], ctx: GenContext,
                strategy: str, **kwargs: Any) -> dict[str, Any]:
        rule_hash = stable_hash({"extractive": RULES_VERSION, "task": self.name, "strategy": strategy}, length=40)
        extra_meta = {"strategy": strategy, **kwargs.pop("extra_meta", {})}
        return make_sample(messages, source=source_of(chunk), task=self.name, ctx=ctx, prompt_hashes=[rule_hash],
                           extra_meta=extra_meta, **kwargs)

    def _qa(self, passage: Passage, chunk: dict, n: int, ctx: GenContext, rng: random.Random) -> list[dict]:
        return [self._sample([{"role": "user", "content": qa.question}, {"role": "assistant", "content": qa.answer}],
                             chunk, ctx, qa.strategy)
                for qa in select(candidates(passage, rng), n, rng)]

    def _multi_turn(self, passage: Passage, chunk: dict, n: int, ctx: GenContext, rng: random.Random) -> list[dict]:
        # cloze prompts make odd conversation turns; the other strategies read like follow-ups
        pool = select(candidates(passage, rng), 3 * n, rng, skip=("cloze",))
        samples = []
        while len(pool) >= 2 and len(samples) < n:
            first = pool.pop(0)
            # a second answer that repeats the first (a section summary containing it) adds nothing
            second = next((qa for qa in pool if qa.answer not in first.answer and first.answer not in qa.answer), None)
            if second is None:
                continue
            pool.remove(second)
            follow_up = second.question
            if follow_up.split()[0] in ("What", "How", "When", "Where", "Which", "Who") and rng.random() < 0.5:
                follow_up = "And " + follow_up[0].lower() + follow_up[1:]
            messages = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.answer},
                        {"role": "user", "content": follow_up}, {"role": "assistant", "content": second.answer}]
            samples.append(self._sample(messages, chunk, ctx, f"{first.strategy}+{second.strategy}",
                                        extra_meta={"turns": 2}))
        return samples

    def _preference(self, passage: Passage, chunk: dict, n: int, ctx: GenContext, rng: random.Random) -> list[dict]:
        samples = []
        for qa in select(candidates(passage, rng), 2 * n, rng):
            rejected, flaw = change_number(qa.answer, rng), "wrong_detail"
            if rejected is None:
                rejected, flaw = _other_part(passage, qa, rng), "unrelated"
            if rejected is None or normalize(rejected) == normalize(qa.answer):
                continue
            samples.append(self._sample(
                [{"role": "user", "content": qa.question}], chunk, ctx, qa.strategy,
                chosen={"role": "assistant", "content": qa.answer},
                rejected={"role": "assistant", "content": rejected}, extra_meta={"flaw": flaw}))
            if len(samples) == n:
                break
        return samples

    def _summarization(self, passage: Passage, chunk: dict, n: int, ctx: GenContext, rng: random.Random) -> list[dict]:
        leads, total = _summary(passage)
        n_sentences = len(passage.sentences())
        if not leads or n_sentences < 3:
            return []  # a passage of one or two sentences has nothing to condense
        if len(leads) < 2:
            # one paragraph: its opening sentences are the lead
            sentences = [s for _, _, _, s in passage.sentences()]
            leads = [s for k, s in enumerate(sentences) if good_answer_sentence(s)
                     and (k > 0 or not starts_with_pronoun(s) or s.split()[0] in ("This", "These"))][:2]
        budget = max(1, int(0.6 * total))
        summary: list[str] = []
        for lead in leads:
            if len(summary) == 4 or (summary and sum(len(s.split()) for s in summary + [lead]) > budget):
                break
            summary.append(lead)
        variants = [(rng.choice(_SUMMARY_ASKS), summary), (rng.choice(_ONE_SENTENCE_ASKS), summary[:1])]
        samples, seen = [], set()
        passage_text = chunk["text"].strip()
        for ask, sentences in variants[:n]:
            text = " ".join(sentences)
            if text in seen or len(text.split()) >= total:
                continue
            seen.add(text)
            samples.append(self._sample(
                [{"role": "user", "content": f"{ask}\n\n{passage_text}"}, {"role": "assistant", "content": text}],
                chunk, ctx, "lead"))
        return samples
