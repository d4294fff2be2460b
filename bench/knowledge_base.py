"""A fictional knowledge base for closed-book QA benchmarks: documents, facts and their questions.

The data lives in `knowledge_base.yaml` beside this module: invented documents about the town of
Halvesk (so no pretrained model can know them), the facts they state with questions and accepted
answer spans, questions about entities no document mentions (a hallucination probe) and general
knowledge questions (a forgetting probe).

Schema (YAML):

    documents: [{name: file.ext, title, sections: [{heading, paragraphs: [text, ...]}]}]
    facts: [{id, doc: file.ext, sentence, answers: [span, ...],
             questions: [{q, type: direct|reversed, answers: [span, ...] (optional)}]}]
    unknown: [{q}]
    known: [{q, answers: [span, ...]}]

A document's extension picks its format (.md, .html, .docx, .pdf, .pptx, .txt). A fact's first
answer is written as in its sentence; further answers are accepted variants. A `reversed`
question asks in the other direction (the sentence's subject is the answer), so it carries its
own `answers`; a `direct` one uses the fact's unless it gives its own.

    kb = load()
    write_documents(kb, "docs/")                 # the documents, each in its format
    for fact, question in questions(kb):
        is_correct(model_answer, question.answers)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

# scoring: the same key-span match and decline markers as the evaluation task's knowledge score
from mason.evaluate.knowledge import declines as is_abstention
from mason.evaluate.knowledge import is_correct, normalize

from mason.scaffold.corpus import (
    Sections,
    write_docx,
    write_html,
    write_markdown,
    write_pdf,
    write_pptx,
    write_text,
)

DEFAULT = Path(__file__).with_name("knowledge_base.yaml")
QUESTION_TYPES = ("direct", "reversed")

# HTML without site chrome: the header and footer of the sample writer name another (demo) company
_WRITERS: dict[str, Callable[[Path, str, Sections], Path]] = {
    ".md": write_markdown,
    ".html": partial(write_html, site_chrome=False),
    ".docx": write_docx,
    ".pdf": write_pdf,
    ".pptx": write_pptx,
    ".txt": write_text,
}
FORMATS = tuple(ext.lstrip(".") for ext in _WRITERS)


@dataclass(frozen=True)
class Section:
    """One section of a document: a heading and its paragraphs."""

    heading: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        """The heading and the paragraphs, separated by blank lines (the open-book context)."""
        return "\n\n".join((self.heading, *self.paragraphs))


@dataclass(frozen=True)
class Document:
    """One document; its `name`'s extension is its format."""

    name: str
    title: str
    sections: tuple[Section, ...]

    @property
    def format(self) -> str:
        """The extension without the dot: md, html, docx, pdf, pptx or txt."""
        return Path(self.name).suffix.lstrip(".").lower()

    def section_of(self, sentence: str) -> Section | None:
        """The section whose paragraphs contain `sentence` verbatim, or None."""
        return next((s for s in self.sections if any(sentence in p for p in s.paragraphs)), None)


@dataclass(frozen=True)
class Question:
    """A question about a fact, with the answer spans that a correct answer must contain one of."""

    q: str
    type: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Fact:
    """One fact: the sentence of `doc` that states it, its questions and its accepted answers."""

    id: str
    doc: str
    sentence: str
    questions: tuple[Question, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """A question outside the documents: `answers` empty for an unknown entity."""

    q: str
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    """The loaded, validated knowledge base."""

    documents: tuple[Document, ...]
    facts: tuple[Fact, ...]
    unknown: tuple[Probe, ...]
    known: tuple[Probe, ...]

    def document(self, name: str) -> Document:
        """The document called `name`. Raises KeyError when there is none."""
        for doc in self.documents:
            if doc.name == name:
                return doc
        raise KeyError(name)

    def context(self, fact: Fact) -> str:
        """The text of the section that states `fact` (heading and paragraphs)."""
        section = self.document(fact.doc).section_of(fact.sentence)
        assert section is not None, fact.id  # load() checked that the sentence is in the document
        return section.text


# ---------------------------------------------------------------- loading and validation


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: expected a non-empty list of strings, got {value!r}")
    return tuple(v.strip() for v in value)


def _field(entry: Any, key: str, where: str) -> Any:
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: missing '{key}' (entry: {entry!r})")
    return entry[key]


def _document(entry: Any, index: int) -> Document:
    name = str(_field(entry, "name", f"document {index + 1}"))
    if Path(name).suffix.lower() not in _WRITERS:
        raise ValueError(f"document {name}: unsupported extension (use one of {', '.join(_WRITERS)})")
    sections = tuple(
        Section(str(_field(s, "heading", f"document {name}")).strip(),
                _strings(_field(s, "paragraphs", f"document {name}"), f"document {name}, section {s.get('heading')!r}"))
        for s in _field(entry, "sections", f"document {name}")
    )
    if not sections:
        raise ValueError(f"document {name}: no sections")
    return Document(name, str(_field(entry, "title", f"document {name}")).strip(), sections)


def _contains(text: str, span: str) -> bool:
    return span.lower() in text.lower()


def _question(entry: Any, fact_id: str, fact_answers: tuple[str, ...], sentence: str) -> Question:
    where = f"fact {fact_id}"
    q = str(_field(entry, "q", where)).strip()
    kind = _field(entry, "type", where)
    if kind not in QUESTION_TYPES:
        raise ValueError(f"{where}: question {q!r} has type {kind!r}, expected one of {QUESTION_TYPES}")
    if kind == "reversed" and "answers" not in entry:
        raise ValueError(f"{where}: reversed question {q!r} needs its own 'answers' (the other side of the fact)")
    answers = _strings(entry["answers"], f"{where}, question {q!r}") if "answers" in entry else fact_answers
    if not _contains(sentence, answers[0]):
        raise ValueError(f"{where}: answer {answers[0]!r} of question {q!r} is not in its sentence")
    leaked = [a for a in answers if is_correct(q, [a])]
    if leaked:
        raise ValueError(f"{where}: question {q!r} contains its own answer {leaked[0]!r}")
    return Question(q, kind, answers)


def _fact(entry: Any, index: int, docs: dict[str, Document]) -> Fact:
    fact_id = str(_field(entry, "id", f"fact {index + 1}"))
    where = f"fact {fact_id}"
    doc, sentence = str(_field(entry, "doc", where)), str(_field(entry, "sentence", where)).strip()
    if doc not in docs:
        raise ValueError(f"{where}: document {doc!r} does not exist (documents: {', '.join(docs)})")
    if docs[doc].section_of(sentence) is None:
        raise ValueError(f"{where}: sentence {sentence!r} does not occur verbatim in {doc}")
    answers = _strings(_field(entry, "answers", where), f"{where}, answers")
    if not _contains(sentence, answers[0]):
        raise ValueError(f"{where}: answer {answers[0]!r} does not occur in its sentence {sentence!r}")
    raw_questions = _field(entry, "questions", where)
    if not isinstance(raw_questions, list):
        raise ValueError(f"{where}: 'questions' must be a list")
    qs = tuple(_question(q, fact_id, answers, sentence) for q in raw_questions)
    if not any(q.type == "direct" for q in qs):
        raise ValueError(f"{where}: no direct question")
    return Fact(fact_id, doc, sentence, qs, answers)


def _probes(entries: Any, kind: str, *, with_answers: bool) -> tuple[Probe, ...]:
    if not isinstance(entries, list):
        raise ValueError(f"'{kind}' must be a list")
    probes = []
    for i, entry in enumerate(entries):
        q = str(_field(entry, "q", f"{kind} {i + 1}")).strip()
        answers = _strings(_field(entry, "answers", f"{kind} {q!r}"), f"{kind} {q!r}") if with_answers else ()
        probes.append(Probe(q, answers))
    return tuple(probes)


def load(path: str | Path = DEFAULT) -> KnowledgeBase:
    """Read and validate the knowledge base at `path`.

    Checks: document names unique with a supported extension, fact ids unique, every fact's
    document exists and contains its sentence verbatim, every fact has a direct question, the
    first accepted answer of every question occurs in the sentence (case-insensitive), and no
    question contains one of its own answers.

    Raises:
        ValueError: the first problem found, naming the fact id (or document, or probe).
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with documents, facts, unknown, known")
    documents = tuple(_document(d, i) for i, d in enumerate(_field(data, "documents", str(path))))
    docs = {d.name: d for d in documents}
    if len(docs) != len(documents):
        raise ValueError(f"{path}: duplicate document names")
    facts: list[Fact] = []
    for i, entry in enumerate(_field(data, "facts", str(path))):
        fact = _fact(entry, i, docs)
        if any(f.id == fact.id for f in facts):
            raise ValueError(f"fact {fact.id}: duplicate id")
        facts.append(fact)
    return KnowledgeBase(documents, tuple(facts), _probes(data.get("unknown", []), "unknown", with_answers=False),
                         _probes(data.get("known", []), "known", with_answers=True))


# ---------------------------------------------------------------- documents and questions


def write_documents(kb: KnowledgeBase, folder: str | Path) -> list[Path]:
    """Write every document of `kb` into `folder` in its format (MASON's sample writers).

    Returns the paths written, in the knowledge base's order. Existing files are overwritten.
    """
    folder = Path(folder)
    return [
        _WRITERS[Path(doc.name).suffix.lower()](folder / doc.name, doc.title,
                                                [(s.heading, list(s.paragraphs)) for s in doc.sections])
        for doc in kb.documents
    ]


def questions(kb: KnowledgeBase, types: Iterable[str] = QUESTION_TYPES) -> Iterator[tuple[Fact, Question]]:
    """Yield `(fact, question)` for every question of a type in `types`, in file order."""
    wanted = set(types)
    for fact in kb.facts:
        for question in fact.questions:
            if question.type in wanted:
                yield fact, question


