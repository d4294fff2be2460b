"""The knowledge recipe: every fact of every chunk, seen many times in varied forms, and held-out
questions that measure whether the model learned it.

Facts are learned when each is seen many times in varied forms, in both directions of a relation,
and as plain next-token text (Allen-Zhu & Li, arXiv 2309.14316; Abonizio et al., arXiv 2508.06178).
Here a *fact* is a sentence of a document that names at least one *key span*: a number with its
unit, a year or date, a name (a run of capitalized words) or a technical term. Rules only, no LLM,
so every answer is a verbatim sentence of the document.

Training views of a fact (`meta.task = "knowledge"`, `meta.view`):

- `text`: the sentence as plain text in several framings (alone, after the document's title, after
  its section heading), and each paragraph once as a whole: next-token text, no prompt;
- `entity`: for each key span, questions *about that span* ("What do you know about the Osk
  Bridge?", "What happened in 1987?") answered with the sentence. Every span of a sentence is
  asked about, so both directions of a relation are trained (the bridge gives its designer, the
  designer gives the bridge);
- `complete`: the sentence's opening words, to be completed with the whole sentence.

Held-out questions (`meta.split = "eval"`, `meta.heldout = "question"`) come from another template
family that no training view uses: the extractive rules' wh-questions ("When was the Osk Bridge
designed?", type `direct`) and relation questions that ask for a sentence's first span from the
others ("According to the Harbor History, who or what goes with 1987 and the Osk Bridge?", type
`reversed`). Each carries `meta.answers`, the key spans a correct answer must contain, and is asked
closed-book (no passage in the prompt). The answer in the sample is the sentence itself.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from mason.core.hashing import stable_hash
from mason.generate import extractive_rules as rules
from mason.generate.extractive_text import (
    Passage,
    good_answer_sentence,
    parse_passage,
    starts_with_pronoun,
)
from mason.generate.tasks.base import normalize, sample_id, source_of

TASK = "knowledge"
RECIPE_VERSION = 1  # in every knowledge sample's prompt_hash: bump when the views change

# a number with an optional unit ("340 litres", "4.20 euros", "06:40", "25 %", "1,500 tonnes")
_NUMBER = re.compile(r"(?<![\w.\-/:])(\d{1,2}:\d{2}|\d[\d,]*(?:\.\d+)?)(?![\w:])"
                     r"(\s*(?:%|percent\b|[A-Za-z\u00b0][A-Za-z]{0,11}(?:/[A-Za-z]+)?\b))?")
_CAP_WORD = r"[A-Z][\w'\u2019-]*"
# a name: capitalized words, optionally joined by "of"/"de"/"van"/"and" ("Port of Ardel", "Mara Velt")
_NAME = re.compile(rf"{_CAP_WORD}(?:\s+(?:(?:of|de|van|der|la|du|and)\s+)?{_CAP_WORD})*")
_TECH = re.compile(r"\b(?=[A-Za-z0-9-]*[A-Z])(?=[A-Za-z0-9-]*[0-9])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")
_MONTHS = ("january february march april may june july august september october november december").split()
_UNIT_NOT = frozenset("and or in on at by to of the a an for from with is are was were per than as which that "
                      "who when while if until after before since during means has have had will can may must "
                      "should would could does do did not".split())
_OPENERS = frozenset("the a an in on at by for from with after before during since when while if this that these "
                     "those each every all some most many one two three four five six seven eight nine ten".split())

_ENTITY_ASKS = {
    "name": ("What do you know about {k}?", "Tell me about {k}.", "What does {title} say about {k}?",
             "Give me one fact about {k}.", "What is there to know about {k}?", "Share a fact involving {k}."),
    "year": ("What happened in {k}?", "What does {title} record for the year {k}?", "Which event is dated {k}?",
             "What took place in {k}?"),
    "number": ("What does the figure {k} refer to?", "Where does {k} come up in {title}?",
               "What is {k} about in {title}?", "Which fact involves {k}?"),
}
_FRAMINGS = ("{sentence}", "{title}: {sentence}", "{heading}. {sentence}", "From {title}: {sentence}")
_COMPLETE = ("Complete this statement from {title}: {prefix} ...", "Finish the sentence: {prefix} ...",
             "Continue: {prefix} ...")
_KIND_WORD = {"year": "which year", "number": "what figure", "name": "who or what"}


@dataclass(frozen=True)
class Span:
    """A key span of a fact: its text as written, its kind ("name", "year", "number"), where it
    starts, and how a question names it (`phrase`: "the Osk Bridge" where the sentence has "the")."""

    text: str
    kind: str
    start: int
    phrase: str = ""

    def __post_init__(self) -> None:
        if not self.phrase:
            object.__setattr__(self, "phrase", self.text)


@dataclass
class Fact:
    """One fact sentence and where it is.

    Attributes:
        id: stable id (hash of the document and the sentence).
        sentence: the sentence, verbatim.
        spans: its key spans, in order.
        paragraph: the paragraph it is in (for the paragraph text view).
        heading: its section heading, or None; title: the document title, or None.
        chunk: the chunk it comes from (for `meta.source`).
    """

    id: str
    sentence: str
    spans: list[Span]
    paragraph: str
    heading: str | None
    title: str | None
    chunk: dict[str, Any] = field(repr=False, default_factory=dict)
    clause: Any = field(repr=False, default=None)


# ---------------------------------------------------------------- facts and key spans


def _number_kind(number: str, unit: str) -> str:
    if not unit and re.fullmatch(r"1[5-9]\d\d|20\d\d", number):
        return "year"
    return "number"


def key_spans(sentence: str, proper: frozenset[str] = frozenset()) -> list[Span]:
    """The key spans of a sentence, in order: numbers with their unit (a bare 4-digit year is a
    "year"), names and technical terms. A capitalized first word counts as part of a name only
    when it is known as a name elsewhere (`proper`) or starts a multi-word name ("Mara Velt")."""
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, kind: str) -> None:
        text = sentence[start:end].strip(" ,;:.")
        if len(text) < 2 or text.lower() in _MONTHS or any(a < end and start < b for a, b in taken):
            return
        taken.append((start, end))
        the = kind == "name" and sentence[:start].lower().endswith("the ")
        spans.append(Span(text, kind, start, f"the {text}" if the else text))

    for m in _NUMBER.finditer(sentence):
        unit = (m.group(2) or "").strip()
        end = m.end() if unit and unit.lower() not in _UNIT_NOT else m.end(1)
        add(m.start(), end, _number_kind(m.group(1), unit if end == m.end() else ""))
    for m in _TECH.finditer(sentence):
        add(m.start(), m.end(), "name")
    for m in _NAME.finditer(sentence):
        words = m.group(0).split()
        start = m.start()
        if start == 0 and (words[0].lower() in _OPENERS or (len(words) == 1 and words[0] not in proper)):
            if len(words) == 1:
                continue
            # "The Osk Bridge": the determiner is not part of the name
            if words[0].lower() in _OPENERS:
                start += len(words[0]) + 1
        if len(words) > 1 and words[0].lower() in _MONTHS:  # "March Velt" is rare; "In March" common
            continue
        add(start, m.end(), "name")
    return _joined(sentence, sorted(spans, key=lambda s: s.start))


def _joined(sentence: str, spans: list[Span]) -> list[Span]:
    """Spans that touch ("ISO" + "8601 UTC", "50 degrees" + "Celsius") are one span."""
    out: list[Span] = []
    for span in spans:
        prev = out[-1] if out else None
        if prev is not None and sentence[prev.start + len(prev.text):span.start] == " ":
            text = sentence[prev.start:span.start + len(span.text)]
            kind = "number" if "number" in (prev.kind, span.kind) else prev.kind
            out[-1] = Span(text, kind, prev.start, prev.phrase[: len(prev.phrase) - len(prev.text)] + text)
        else:
            out.append(span)
    return out


def _strong(span: Span) -> bool:
    """A span that identifies a fact by itself: a name, a year, or a number with its unit (not "10")."""
    return span.kind != "number" or not re.fullmatch(r"[\d.,:]+", span.text)


def extract_facts(chunk: dict[str, Any], passage: Passage | None = None) -> list[Fact]:
    """The facts of one chunk: complete sentences (not opening with a pronoun) with a key span."""
    passage = passage or parse_passage(chunk["text"], list(chunk.get("headings") or []))
    facts = []
    for sec in passage.sections:
        for p in sec.paragraphs:
            paragraph = " ".join(p.sentences)
            for s in p.sentences:
                if not good_answer_sentence(s) or starts_with_pronoun(s):
                    continue
                spans = key_spans(s, passage.proper)
                if not spans:
                    continue
                fid = stable_hash({"doc": chunk.get("doc"), "sentence": s})[:16]
                facts.append(Fact(fid, s, spans, paragraph, sec.heading, passage.title, chunk,
                                  rules.parse_clause(s, passage.proper)))
    return facts


# ---------------------------------------------------------------- samples


@dataclass
class KnowledgeSet:
    """What the recipe made: training views, held-out questions and the coverage report."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    report: dict[str, Any]


def _title(fact: Fact) -> str:
    return fact.title or str(fact.chunk.get("doc") or "the document")


def _sample(fact: Fact, messages: list[dict[str, str]], view: str, *, split: str = "train",
            system: str | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    msgs = ([{"role": "system", "content": system}] if system and view != "text" else []) + messages
    return {"id": sample_id(msgs), "messages": msgs, "meta": {
        "source": source_of(fact.chunk), "task": TASK, "teacher": "extractive", "view": view, "fact": fact.id,
        "prompt_hash": stable_hash({"recipe": RECIPE_VERSION, "fact": fact.id, "view": view}),
        "split": split, **(meta or {})}}


def _qa(fact: Fact, question: str, view: str, **kw: Any) -> dict[str, Any]:
    return _sample(fact, [{"role": "user", "content": question}, {"role": "assistant", "content": fact.sentence}],
                   view, **kw)


def _text(fact: Fact, text: str) -> dict[str, Any]:
    return _sample(fact, [{"role": "assistant", "content": text}], "text")


def train_views(fact: Fact, *, questions_per_span: int, framings: int, rng: random.Random,
                system: str | None = None) -> list[dict[str, Any]]:
    """The training samples of one fact (see the module docstring)."""
    title, heading = _title(fact), fact.heading or _title(fact)
    views = []
    for template in _FRAMINGS[:framings]:
        views.append(_text(fact, template.format(sentence=fact.sentence, title=title, heading=heading)))
    for span in fact.spans:
        asks = list(_ENTITY_ASKS[span.kind])
        rng.shuffle(asks)
        for ask in asks[:questions_per_span]:
            views.append(_qa(fact, ask.format(k=span.phrase, title=title), "entity", system=system))
    later = [s for s in fact.spans if s.start > 0]
    if later:
        prefix = fact.sentence[:later[0].start].rstrip(" ,;:")
        if len(prefix.split()) >= 3:
            ask = _COMPLETE[rng.randrange(len(_COMPLETE))]
            views.append(_qa(fact, ask.format(title=title, prefix=prefix), "complete", system=system))
    return views


def _mentions(question: str, span: Span) -> bool:
    return normalize(span.text) in normalize(question)


def heldout_questions(fact: Fact, *, system: str | None = None) -> list[dict[str, Any]]:
    """Held-out questions about one fact, from template families no training view uses:
    a wh-question by the extractive rules (`direct`) and a relation question asking for the
    sentence's first span from the others (`reversed`). Each has `meta.answers`."""
    out = []
    if fact.clause is not None:
        for make in (rules.numeric_question, rules.verb_question, rules.definition_question):
            question = make(fact.clause)
            answers = [s.text for s in fact.spans if question and not _mentions(question, s)]
            if question and answers:
                out.append(_qa(fact, question, "heldout", split="eval", system=system,
                               meta={"heldout": "question", "answers": answers, "question_type": "direct"}))
                break
    cues = [s for s in fact.spans[1:] if _strong(s)][:2]
    if cues and _strong(fact.spans[0]):
        target = fact.spans[0]
        cue = " and ".join(c.phrase for c in cues)
        question = f"According to {_title(fact)}, {_KIND_WORD[target.kind]} goes with {cue}?"
        out.append(_qa(fact, question, "heldout", split="eval", system=system,
                       meta={"heldout": "question", "answers": [target.text], "question_type": "reversed"}))
    return out


_UNKNOWN_ASKS = ("Who founded the {e}?", "When was the {e} built?", "Who is in charge of the {e}?",
                 "How many people work at the {e}?", "Where is the {e}?", "What is the {e} known for?")
_DECLINE = "I don't know: the documents I learned say nothing about the {e}."


def invented_entities(facts: list[Fact], n: int, rng: random.Random, corpus: str = "") -> list[str]:
    """Plausible entities that no document mentions: the first word of one multi-word name with the
    last word of another ("Saltwren Observatory" from "Saltwren Bridge" and "Greyloft Observatory"),
    never a pair of words the facts or the `corpus` text contain. Up to `n`, in a seeded order, one
    per first word before any first word repeats."""
    names = sorted({s.text for f in facts for s in f.spans if s.kind == "name" and len(s.text.split()) >= 2})
    heads = sorted({nm.split()[0] for nm in names})
    kinds = sorted({nm.split()[-1] for nm in names})
    text = " ".join([normalize(corpus), *(normalize(f.sentence) for f in facts)])
    pairs = [(h, k) for h in heads for k in kinds if h != k]
    rng.shuffle(pairs)
    fresh = [f"{h} {k}" for h, k in pairs if normalize(f"{h} {k}") not in text]
    out: list[str] = []
    for entity in fresh:  # first one per first word, for variety; then any
        if len(out) < n and entity.split()[0] not in {e.split()[0] for e in out}:
            out.append(entity)
    out += [e for e in fresh if e not in out][: n - len(out)]
    return out


def unknown_questions(facts: list[Fact], *, heldout: int, train: int, seed: int, system: str | None = None,
                      corpus: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The hallucination check and its lesson: questions about invented entities (`invented_entities`).

    Returns (held-out questions: `meta.question_type = "unknown"`, `meta.expect = "decline"`;
    training questions about other invented entities, answered with a decline). A model that
    answers a held-out one with a fact instead of declining made it up.
    """
    if not facts or heldout + train == 0:
        return [], []
    rng = random.Random(seed + 7919)
    entities = invented_entities(facts, heldout + train, rng, corpus)
    asks = list(_UNKNOWN_ASKS)
    evals, lessons = [], []
    for i, entity in enumerate(entities):
        fact = facts[i % len(facts)]  # any fact: provenance of a question about nothing in the documents
        question = asks[i % len(asks)].format(e=entity)
        answer = {"role": "assistant", "content": _DECLINE.format(e=entity)}
        messages = [{"role": "user", "content": question}, answer]
        if i < heldout:
            evals.append(_sample(fact, messages, "heldout", split="eval", system=system,
                                 meta={"heldout": "question", "question_type": "unknown", "expect": "decline"}))
        else:
            lessons.append(_sample(fact, messages, "decline", system=system))
    return evals, lessons


def build(chunks: list[dict[str, Any]], *, questions_per_span: int = 2, framings: int = 3, paragraphs: bool = True,
          seed: int = 0, system: str | None = None, heldout_docs: frozenset[str] = frozenset(),
          unknown: int = 0, declines: int = 0) -> KnowledgeSet:
    """Facts of every chunk, their training views and their held-out questions.

    Facts of documents in `heldout_docs` (held out whole by the document split) get held-out
    questions but no training view. `unknown` held-out questions and `declines` training
    questions about invented entities (`unknown_questions`) check and teach "I don't know".
    Returns the KnowledgeSet; `report` counts facts, views by kind, facts per document and facts
    that got no held-out question.
    """
    rng = random.Random(seed)
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    seen_paragraphs: set[str] = set()
    facts_per_doc: dict[str, int] = {}
    n_facts = no_question = 0
    seen_sentences: set[tuple[str, str]] = set()
    all_facts: list[Fact] = []
    for chunk in chunks:
        doc = str(chunk.get("doc"))
        for fact in extract_facts(chunk):
            if (doc, fact.sentence) in seen_sentences:  # chunk overlap repeats sentences
                continue
            seen_sentences.add((doc, fact.sentence))
            all_facts.append(fact)
            n_facts += 1
            facts_per_doc[doc] = facts_per_doc.get(doc, 0) + 1
            questions = heldout_questions(fact, system=system)
            no_question += not questions
            evals += questions
            if doc in heldout_docs:
                continue
            train += train_views(fact, questions_per_span=questions_per_span, framings=framings, rng=rng,
                                 system=system)
            if paragraphs and fact.paragraph not in seen_paragraphs and fact.paragraph != fact.sentence:
                seen_paragraphs.add(fact.paragraph)
                train.append(_text(fact, fact.paragraph))
    unknown_evals, lessons = unknown_questions(all_facts, heldout=unknown, train=declines, seed=seed, system=system,
                                               corpus=" ".join(str(c.get("text") or "") for c in chunks))
    evals += unknown_evals
    train += lessons
    views: dict[str, int] = {}
    for s in train:
        views[s["meta"]["view"]] = views.get(s["meta"]["view"], 0) + 1
    types: dict[str, int] = {}
    for s in evals:
        types[s["meta"]["question_type"]] = types.get(s["meta"]["question_type"], 0) + 1
    report = {"facts": n_facts, "documents": len(facts_per_doc), "facts_per_document": facts_per_doc,
              "views": views, "train_samples": len(train), "heldout_questions": types,
              "facts_without_heldout_question": no_question,
              "views_per_fact": round(len(train) / n_facts, 2) if n_facts else 0.0}
    return KnowledgeSet(train, evals, report)

