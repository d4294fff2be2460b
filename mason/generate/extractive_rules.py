"""Question rules of the extractive (no-LLM) teacher: a shallow clause parse and wh-questions.

The extractive teacher never writes an answer: every answer is one or more sentences copied
from the chunk. What it writes is the question, with a few grammar rules over a shallow parse
of each sentence into subject, verb group and the rest:

- definitions: "X is a/an/the Y" -> "What is X?"; "X means Y" -> "What does X mean?"
- facts with numbers and dates: subject-auxiliary inversion around the number phrase
  ("Calibrate the pH sensor every 30 days." -> "How often should you calibrate the pH sensor?",
  "Firmware 3.2 was released on 4 March 2024." -> "When was firmware 3.2 released?")
- how/where/when/what questions from the verb ("Webhook payloads are signed with HMAC-SHA256"
  -> "How are webhook payloads signed?")

(FAQ, heading and cloze questions need no grammar; they live in `mason.generate.extractive`.)

A rule that is not sure returns None: a missing question costs nothing, an ungrammatical one
teaches the student model bad English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mason.generate.extractive_text import PRONOUN_START, bare, is_number

_LEAD = re.compile(
    r"^(?P<lead>(?:If|When|Once|While|Whenever|Before|After|During|Unless|Until)\b[^,;:]{2,80}),\s+(?P<main>.+)$"
)
_BAD_SUBJECT_START = PRONOUN_START | frozenset(
    "if when once while before after during unless until in on at for by with from to as because although "
    "since where whether how what why which who yes no not also however then so and or but only".split()
)
_DETERMINERS = frozenset("the a an each every any all some one most many no".split())
BE = frozenset("is are was were".split())
MODALS = frozenset("can may must should will could would might".split())
_IRREGULAR_PP = frozenset("""taken sent made built held kept shown given done set put run read sold found lost paid
told worn written brought bought caught taught known seen driven chosen frozen spoken broken hidden hung
shut split spread cut left meant won""".split())
_VERB_BASES = """accept activate add allow appear apply arrive attach avoid calibrate call carry cause charge check
choose clean close compare configure connect contain cost cover create deliver deploy depend detect disable
download drop enable enter exceed expire fail fire follow give hang have hold include insert inspect install
keep last lift lose mean measure mount move need offer open operate outlive place press produce provide range
reach receive record reduce refer register reject remain remove replace report require reset restart retrieve
return rinse rotate run save select send set ship show skip stand start stay stop store support survive switch
swap tag take test trigger turn unlock update upload use verify wait wear weigh wipe work write lock pay book
reserve access sign""".split()
# verbs whose object is the natural thing to ask for ("What does each reading hold?")
_CONTENT_VERBS = frozenset("accept carry compare contain cover hold include measure receive record require return "
                           "store support wear".split())
# imperatives whose complement is a place: "Attach the line to the shackle" -> "Where should you attach ...?"
_PLACEMENT_VERBS = frozenset("attach connect install insert mount place put store keep".split())
# verbs whose "with ..." is the means ("unlock a bike with the app"), not a companion ("returns X with Y")
_MANNER_VERBS = frozenset("access activate book calibrate charge clean connect install lift lock log open pay "
                          "register reserve reset sign unlock update".split())
_ADVERBS = frozenset("always never often usually also only normally still now typically generally".split())
_TIME_UNITS = frozenset("second seconds minute minutes hour hours day days week weeks month months year years "
                        "night nights".split())
_DISTANCE_UNITS = frozenset("metre metres meter meters m km cm mm kilometres kilometers feet ft miles inches".split())
_MONTHS = frozenset("january february march april may june july august september october november december "
                    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_QUALIFIERS = ("at least", "at most", "up to", "more than", "less than", "fewer than", "no more than",
               "about", "approximately", "around", "roughly", "nearly", "almost", "over", "under", "only",
               "exactly", "just")
_UNIT_STOP = frozenset("and or but which that who when while if so because to in on at by from with without "
                       "during after before for into as than under over inside once".split())



def _third_person(base: str) -> str:
    if base == "have":
        return "has"
    if re.search(r"(s|sh|ch|x|z|o)$", base):
        return base + "es"
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ies"
    return base + "s"


VERB_BASE = frozenset(_VERB_BASES)
VERB_THIRD = {_third_person(b): b for b in _VERB_BASES}




# ---------------------------------------------------------------- clauses


@dataclass(frozen=True)
class Clause:
    """A sentence's main clause, shallowly parsed.

    Attributes:
        kind: "imperative", "passive" (be + participle), "copula" (be + anything else),
            "modal" (can/must... + verb) or "active" (a known verb, present tense).
        subject: as it reads inside a question ("the pH sensor"); "" for imperatives.
        aux: the word that moves to the front of a question: is/are/was/were, a modal,
            does/do for active clauses, "should" for imperatives.
        verb: participle, base verb (with a leading adverb, if any), "" for a copula.
        rest: the words after the verb group, up to the end of the first clause.
        lead: a fronted phrase ("before deployment", "if a check-in is missed"), lowercased, or "".
    """

    kind: str
    subject: str
    aux: str
    verb: str
    rest: tuple[str, ...]
    lead: str = ""

    @property
    def lemma(self) -> str:
        """The verb itself, without a leading adverb or "be"."""
        return self.verb.split()[-1] if self.verb else ""

    @property
    def lead_has_pronoun(self) -> bool:
        return any(bare(w).lower() in PRONOUN_START for w in self.lead.split())


def _participle(word: str) -> bool:
    w = word.lower()
    return w.isalpha() and (w.endswith("ed") or w in _IRREGULAR_PP)


def subject_text(words: list[str], proper: frozenset[str]) -> str:
    """The subject as it reads inside a question: a sentence-initial common word lowercased."""
    first = words[0]
    keep = (first in proper or not first[:1].isupper() or not first[1:].replace("-", "").islower()
            or (len(words) > 1 and words[1][:1].isupper()))
    if first.lower() in _DETERMINERS:
        keep = False
    return " ".join([first if keep else first.lower()] + words[1:])


def _imperative_object(word: str) -> bool:
    w = word.lower()
    return w in _DETERMINERS or w in ("your", "it", "them", "its", "their") or w.startswith("`")


def _is_adverb(word: str) -> bool:
    w = word.lower()
    return w in _ADVERBS or (w.endswith("ly") and w.isalpha() and len(w) > 4)


def _verb_group(words: list[str], i: int, subj: str, lead: str, adverb: str) -> Clause | None:
    """The clause whose verb group starts at `words[i]`, or None when it is not one we handle."""
    w = words[i].lower()
    nxt = words[i + 1].lower() if i + 1 < len(words) else ""
    if nxt in ("not", "never", "no") or w.endswith("n't") or adverb.strip() == "never":
        return None  # questions about negations read badly and invite wrong answers
    subject_words = subj.split()
    plural = bare(subject_words[-1]).lower().endswith("s") or " and " in subj
    if w in BE:
        j = i + 1
        while j + 1 < len(words) and _is_adverb(words[j]):
            adverb, j = adverb + words[j] + " ", j + 1
        if j < len(words) and _participle(bare(words[j])) and bare(words[j]) == words[j]:
            return Clause("passive", subj, w, adverb + words[j], tuple(words[j + 1:]), lead)
        return Clause("copula", subj, w, "", tuple(words[i + 1:]), lead) if not adverb else None
    if w in MODALS:
        if not nxt.isalpha():
            return None
        if nxt == "be" and i + 2 < len(words) and _participle(words[i + 2]):
            return Clause("modal", subj, w, f"{adverb}be {words[i + 2]}", tuple(words[i + 3:]), lead)
        return Clause("modal", subj, w, adverb + nxt, tuple(words[i + 2:]), lead)
    if w in VERB_THIRD:
        return Clause("active", subj, "does", adverb + VERB_THIRD[w], tuple(words[i + 1:]), lead)
    if w in VERB_BASE and plural:
        return Clause("active", subj, "do", adverb + w, tuple(words[i + 1:]), lead)
    return None


def _imperative(words: list[str], lead: str) -> Clause | None:
    first = bare(words[0]).lower()
    capitalized = words[0][:1].isupper()
    if first in VERB_BASE and (capitalized or lead) and _imperative_object(words[1]):
        return Clause("imperative", "", "should", first, tuple(words[1:]), lead)
    return None


def parse_clause(sentence: str, proper: frozenset[str] = frozenset()) -> Clause | None:
    """Shallow parse of the first clause of `sentence`, or None when it has no clear structure."""
    s = sentence.strip().rstrip(".!?").strip()
    lead = ""
    if m := _LEAD.match(s):
        lead, s = m["lead"][0].lower() + m["lead"][1:], m["main"]
    s = re.split(r"\s*;\s+|:\s+|\s+[-\u2013\u2014]\s+", s)[0]
    words = s.split()
    if len(words) < 3:
        return None
    if (imperative := _imperative(words, lead)) is not None:
        return imperative
    if bare(words[0]).lower() in _BAD_SUBJECT_START:
        return None
    in_relative = False
    for i in range(1, min(len(words) - 1, 10)):
        if any(c in words[i - 1] for c in ",;:()"):
            return None  # a subject with punctuation in it is a list or an aside: too risky
        w = words[i].lower()
        prev = words[i - 1].lower()
        if w in ("that", "which", "who"):
            in_relative = True
            continue
        if not (w in BE or w in MODALS or w in VERB_THIRD or w in VERB_BASE) or prev in _DETERMINERS:
            continue
        if in_relative:
            in_relative = False  # this verb belongs to the relative clause ("a buoy that loses ...")
            continue
        k = i
        while k > 1 and _is_adverb(words[k - 1]):
            k -= 1  # "Field work always requires": the adverb belongs to the verb group
        subject = " ".join(words[:k]).lower()
        if any(f" {q} " in f" {subject} " for q in _QUALIFIERS if " " in q):
            return None  # "conductivity up to 100 mS/cm covers ...": a measurement, not a subject
        adverb = "".join(w + " " for w in words[k:i])
        clause = _verb_group(words, i, subject_text(words[:k], proper), lead, adverb)
        if clause is not None or w in BE or w in MODALS or w in VERB_THIRD:
            return clause
    return None


# ---------------------------------------------------------------- questions


def finish_question(text: str) -> str:
    """Tidy spacing and punctuation, capitalize, end with exactly one '?'."""
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;:.!? ")
    text = re.sub(r"\s+([,;:])", r"\1", text)
    return text[:1].upper() + text[1:] + "?"


def definition_question(clause: Clause) -> str | None:
    """"X is a Y" -> "What is X?"; "X means Y" -> "What does X mean?"; "X is used to" -> used for."""
    subject = clause.subject.split()
    if clause.lead or not 0 < len(subject) <= 6 or not clause.rest:
        return None
    if any(w.lower() in _PREPOSITIONS for w in subject[1:]):
        return None  # "What is ice on the water?": a situation, not a term
    head = bare(clause.rest[0]).lower()
    if clause.kind == "copula" and head in ("a", "an", "the", "one") and len(clause.rest) >= 2:
        return finish_question(f"What {clause.aux} {clause.subject}")
    if clause.kind == "active" and clause.verb in ("mean", "refer", "stand"):
        tail = {"mean": "", "refer": " to", "stand": " for"}[clause.verb]
        if clause.verb == "mean" or head == tail.strip():
            return finish_question(f"What {clause.aux} {clause.subject} {clause.verb}{tail}")
    if clause.kind == "passive" and clause.verb == "used" and head in ("to", "for"):
        return finish_question(f"What {clause.aux} {clause.subject} used for")
    return None


def _core(clause: Clause) -> str:
    if clause.kind == "imperative":
        return f"should you {clause.verb}"
    if clause.kind == "copula":
        return f"{clause.aux} {clause.subject}"
    return f"{clause.aux} {clause.subject} {clause.verb}"


def _object_words(rest: tuple[str, ...]) -> list[str]:
    """The object of a verb: words up to "only"/"when"/"if" or the first punctuation."""
    out: list[str] = []
    for w in rest:
        if bare(w).lower() in ("only", "when", "if", "once", "whenever"):
            break
        out.append(w)
        if w != bare(w):
            break
    return out


def _imperative_question(clause: Clause) -> str | None:
    # "Attach the line to the shackle" -> where; "Enter the coordinates before redeploying" -> when
    obj: list[str] = []
    for w in clause.rest:
        if bare(w).lower() in _UNIT_STOP:
            break
        obj.append(w)
        if w != bare(w):
            return None  # "Rinse the electrode, then ...": a list of steps, not one instruction
    nxt = bare(clause.rest[len(obj)]).lower() if len(obj) < len(clause.rest) else ""
    if not 0 < len(obj) <= 6:
        return None
    if clause.lemma in _PLACEMENT_VERBS and nxt in ("to", "in", "on", "under", "inside", "into"):
        return finish_question(f"Where should you {clause.verb} {' '.join(obj)}")
    if nxt in ("before", "after", "when", "once"):
        return finish_question(f"When should you {clause.verb} {' '.join(obj)}")
    return None


def _passive_question(clause: Clause, head: str) -> str | None:
    if clause.verb.endswith("caused") and head == "by":
        adverb = clause.verb[: -len("caused")]
        return finish_question(f"What {adverb}causes {clause.subject}")
    if head in ("with", "using", "via", "through"):
        return finish_question(f"How {_core(clause)}")
    if head in ("in", "under", "inside"):
        return finish_question(f"Where {_core(clause)}")
    if head in ("when", "if", "once", "whenever"):
        return finish_question(f"When {_core(clause)}")
    if head == "for" and clause.lemma in ("made", "designed", "intended", "meant", "built"):
        return finish_question(f"What {_core(clause)} for")
    if head == "to" and clause.lemma in ("designed", "intended", "meant", "built"):
        return finish_question(f"What {_core(clause)} to do")
    return None


def _active_question(clause: Clause, rest: list[str]) -> str | None:
    head = rest[0] if rest else ""
    if _is_adverb(head) and len(rest) > 1:
        head = rest[1]
    if head in ("when", "if", "once", "whenever"):
        return finish_question(f"When {_core(clause)}")
    if head == "with" and clause.lemma in ("ship", "come"):
        return finish_question(f"What {_core(clause)} with")
    obj = _object_words(clause.rest)
    stop = next((k for k, w in enumerate(obj) if bare(w).lower() in ("with", "using", "via", "through")), None)
    after = bare(clause.rest[len(obj)]).lower() if len(obj) < len(clause.rest) else ""
    if head not in _UNIT_STOP and after in ("only", "when", "if", "once", "whenever") and 0 < len(obj) <= 8:
        return finish_question(f"When {_core(clause)} {' '.join(obj)}")
    if head not in _UNIT_STOP and stop is not None and 0 < stop <= 5 and clause.lemma in _MANNER_VERBS:
        # "Riders unlock a bike with the app" -> "How do riders unlock a bike?"
        return finish_question(f"How {_core(clause)} {' '.join(obj[:stop])}")
    if clause.lemma in _CONTENT_VERBS and head not in _UNIT_STOP:
        return finish_question(f"What {_core(clause)}")
    return None


def verb_question(clause: Clause) -> str | None:
    """How/where/when/what questions from the verb group, or None.

    "Payloads are signed with X" -> "How are payloads signed?"; "Keys are created under X" ->
    "Where are keys created?"; "Jumps are usually caused by X" -> "What usually causes jumps?";
    "When a rule fires, the cloud sends X" -> "What does the cloud do when a rule fires?";
    "Each reading holds X" -> "What does each reading hold?".
    """
    rest = [bare(w).lower() for w in clause.rest]
    if clause.lead:
        if clause.lead_has_pronoun or clause.kind in ("copula", "passive"):
            return None
        who = "you" if clause.kind == "imperative" else clause.subject
        return finish_question(f"What {clause.aux} {who} do {clause.lead}")
    if clause.kind == "imperative":
        return _imperative_question(clause)
    if clause.kind == "passive":
        return _passive_question(clause, rest[0] if rest else "")
    if clause.kind in ("active", "modal"):
        return _active_question(clause, rest)
    return None


# ---------------------------------------------------------------- numbers and dates

_PREPOSITIONS = frozenset("every for after within in on at by to from between until before of than over under "
                          "below above around per since".split())
_IRREGULAR_PLURALS = frozenset("people children men women staff personnel feet teeth mice".split())
_DIMENSIONS = frozenset("diameter length width height depth thickness radius".split())
_ADJECTIVE_MEASURES = frozenset("deep long wide high tall thick".split())


@dataclass(frozen=True)
class NumberPhrase:
    """Where a number (or "every <unit>") sits in a clause's rest.

    Attributes:
        start: index of the phrase's first word (its preposition or qualifier, else the number).
        prep: the preposition before it ("every", "for", "on", ...), "" when it is the object.
        unit: the words after the number ("days", "requests per minute").
        end: index just after the phrase.
        kind: "time", "date", "distance", "count" or "other".
    """

    start: int
    prep: str
    unit: tuple[str, ...]
    end: int
    kind: str


def _unit(words: list[str], i: int) -> tuple[list[str], int]:
    unit: list[str] = []
    while i < len(words) and len(unit) < 4:
        b = bare(words[i])
        lb = b.lower()
        if not re.match(r"^[A-Za-z%][\w/%-]*$", b) or (lb in _UNIT_STOP and lb not in ("per", "of")):
            break
        if lb in ("per", "of") and (not unit or i + 1 >= len(words) or bare(words[i + 1]).lower() in _DETERMINERS):
            break
        unit.append(b)
        i += 1
        if words[i - 1] != b:
            break  # punctuation after a unit word ends the phrase
    if unit and unit[-1].lower() in ("per", "of"):
        unit.pop()
        i -= 1
    return unit, i


def _head_noun(unit: list[str]) -> str:
    for k, w in enumerate(unit):
        if w.lower() in ("per", "of"):
            return unit[k - 1] if k else ""
    return unit[-1] if unit else ""


def _kind(number: str, unit: list[str]) -> str:
    u = unit[0].lower() if unit else ""
    if re.match(r"^\d{1,2}:\d{2}$", number) or u in _MONTHS or number.lower() in _MONTHS:
        return "date"
    if re.match(r"^(19|20)\d\d$", number) and not unit:
        return "date"
    if u in _TIME_UNITS:
        return "time"
    if u in _DISTANCE_UNITS:
        return "distance"
    head = _head_noun(unit)
    if head in _IRREGULAR_PLURALS or (len(head) >= 3 and head.isalpha() and head.islower() and head.endswith("s")
                                      and not head.endswith("ss")):
        return "count"
    return "other"


def _qualifier_start(words: list[str], j: int) -> int:
    for q in sorted(_QUALIFIERS, key=len, reverse=True):
        qw = q.split()
        if j >= len(qw) and [bare(w).lower() for w in words[j - len(qw):j]] == qw:
            return j - len(qw)
    return j


def find_number_phrase(rest: tuple[str, ...]) -> NumberPhrase | None:
    """The first number phrase in `rest` that a question can ask about, or None.

    Skipped: numbers that modify a noun ("a 150 newton jacket"), that are part of a name
    ("pH 7", "firmware 3.2") or of a list ("12 V, 40 Ah").
    """
    words = list(rest)
    for j, w in enumerate(words):
        lw = bare(w).lower()
        if lw == "every" and j + 1 < len(words) and bare(words[j + 1]).lower() in _TIME_UNITS:
            return NumberPhrase(j, "every", (bare(words[j + 1]),), j + 2, "time")
        if not (is_number(w) or (lw in _MONTHS and lw != "may" and j > 0 and bare(words[j - 1]).lower() == "in")):
            continue
        if j > 0 and words[j - 1] != bare(words[j - 1]):
            continue
        k = _qualifier_start(words, j)
        prev = bare(words[k - 1]).lower() if k > 0 else ""
        if k > 0 and prev not in _PREPOSITIONS:
            continue
        unit, end = _unit(words, j + 1)
        return NumberPhrase(k - 1 if prev else k, prev, tuple(unit), end, _kind(bare(w), unit))
    return None


def _tail(words: tuple[str, ...]) -> str:
    """A short qualifier after the number phrase worth keeping in the question ("without any sun")."""
    if not words:
        return ""
    first = bare(words[0]).lower()
    if first == "by" and len(words) > 1 and bare(words[1]).lower() == "default":
        return "by default"
    if first not in ("without", "during"):
        return ""
    out: list[str] = []
    for w in words:
        if out and (bare(w).lower() in _UNIT_STOP or is_number(w)):
            break
        out.append(bare(w))
        if w != bare(w):
            break
    return " ".join(out) if len(out) <= 6 else ""


def _wh_for_time(ph: NumberPhrase, clause: Clause) -> str | None:
    unit = " ".join(ph.unit)
    plural = ph.unit[-1].lower().endswith("s") if ph.unit else False
    if ph.prep == "every":
        return "How often"
    if ph.prep in ("within", "in"):
        return "How quickly"
    if ph.prep == "after" and plural:
        return f"After how many {unit}"
    if ph.prep == "for" or (not ph.prep and clause.lemma in ("last", "take", "run", "stay", "remain", "wait")):
        return "How long"
    if not ph.prep and plural:
        return f"How many {unit}"
    return None


def _special_measure(ph: NumberPhrase, clause: Clause) -> str | None:
    after = [bare(w).lower() for w in clause.rest[ph.end:ph.end + 3]]
    if clause.kind == "copula" and not ph.prep and after[:1] == ["in"] and after[1:2] and after[1] in _DIMENSIONS:
        return finish_question(f"What is the {after[1]} of {clause.subject}")
    if clause.kind == "copula" and not ph.prep and after[:1] and after[0] in _ADJECTIVE_MEASURES:
        return finish_question(f"How {after[0]} {clause.aux} {clause.subject}")
    if clause.kind == "active" and clause.lemma == "weigh":
        return finish_question(f"How much {clause.aux} {clause.subject} {clause.verb} {clause.lead}")
    return None


def numeric_question(clause: Clause) -> str | None:
    """A how-often/how-long/when/how-many question about the clause's number phrase, or None.

    "Calibrate the pH sensor every 30 days" -> "How often should you calibrate the pH sensor?"
    """
    if clause.lead_has_pronoun or not clause.rest:
        return None
    if clause.kind == "active" and clause.lemma == "range" and bare(clause.rest[0]).lower() == "from":
        return finish_question(f"What is the range of {clause.subject}")
    ph = find_number_phrase(clause.rest)
    if ph is None:
        return None
    special = _special_measure(ph, clause)
    if special or clause.kind == "copula":
        return special
    middle = clause.rest[:ph.start]
    if len(middle) > 12 or any(c in w for w in middle for c in ",;:()"):
        return None
    wh, prep_end, tail = None, "", _tail(clause.rest[ph.end:])
    if ph.kind == "time":
        wh = _wh_for_time(ph, clause)
    elif ph.kind == "date" and ph.prep in ("on", "in", "between", "at", "since", "by", "until", "from"):
        wh = "When"
    elif ph.kind == "distance" and ph.end < len(clause.rest) and bare(clause.rest[ph.end]).lower() in (
            "below", "above", "under", "from"):
        wh, tail = "How far " + " ".join(bare(w) for w in clause.rest[ph.end:ph.end + 3]), ""
    elif ph.kind == "count" and ph.prep not in ("with", "of", "from", "between", "to", "than", "by"):
        wh, prep_end = f"How many {' '.join(ph.unit)}", ph.prep
    if wh is None:
        return None
    if wh.startswith(("How many", "After how many", "How far")):
        tail = ""
    parts = [wh, _core(clause), " ".join(middle), prep_end, tail, clause.lead]
    question = finish_question(" ".join(p for p in parts if p))
    return question if len(question.split()) <= 28 else None
