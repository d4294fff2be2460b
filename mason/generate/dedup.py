"""Duplicate questions: exact (normalized hash) and near duplicates (MinHash LSH).

A sample's *question* is its first user turn, or the whole user side of a multi-turn sample.
The system prompt is left out: it is usually the same for every sample.

- Exact: the sha1 of the question after NFKC, case folding, removing punctuation and symbols,
  and collapsing whitespace. "What is X?" and "what is  x" are the same question.
- Near: MinHash (datasketch) over the question's word unigrams and bigrams, indexed in an LSH
  at `threshold`. Unigrams catch rewordings, bigrams add some word order ("the capital of France"
  vs. "France of the capital"). Short questions make coarse sets, so word 3-gram shingles
  (the usual choice for long documents) would miss most near duplicates of a ten-word question.
  Every LSH candidate is then checked against the exact Jaccard similarity of the stored
  shingle sets, so the probabilistic index never decides alone.

The first sample seen is the one kept; later ones are reported against it. With the same
seed and the same input order, the decisions are the same on every run and machine.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from typing import Any

from datasketch import MinHash, MinHashLSH

from mason.data.quality import question_text, words

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """`text` with case, punctuation, symbols and whitespace differences removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    # An apostrophe joins ("x200's" = "x200s"); other punctuation separates ("a-b" = "a b").
    text = re.sub(r"(?<=\w)['’ʼ](?=\w)", "", text)
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def shingles(text: str) -> set[str]:
    """Word unigrams and bigrams of `text` (case-folded), the sets MinHash compares."""
    toks = words(text)
    return set(toks) | {f"{a} {b}" for a, b in itertools.pairwise(toks)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two sets (0.0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class Deduplicator:
    """Stateful filter: feed samples in order, keep the first of each group of duplicates.

    Args:
        threshold: Jaccard similarity of question shingles from which a question is a near
            duplicate (e.g. `FilterConfig.near_duplicate_threshold`), in (0, 1].
        num_perm: MinHash permutations (more: more accurate, slower).
        seed: MinHash seed; equal seeds give equal decisions.

    Raises:
        ValueError: threshold outside (0, 1] or num_perm < 2.
    """

    def __init__(self, threshold: float, num_perm: int = 128, seed: int = 1):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {num_perm}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        # Permutations are drawn once: building them per MinHash is most of MinHash's cost.
        template = MinHash(num_perm=num_perm, seed=seed)
        self._scheme = template.scheme
        self._permutations = template.permutations
        self._exact: dict[str, str] = {}
        self._kept_ids: list[str] = []
        self._kept_shingles: list[set[str]] = []
        self.counts = {"kept": 0, "duplicate": 0, "near_duplicate": 0}

    def __len__(self) -> int:
        return len(self._kept_ids)

    def _minhash(self, items: set[str]) -> MinHash:
        mh = MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._permutations,
                     scheme=self._scheme)
        mh.update_batch([s.encode("utf-8") for s in sorted(items)])
        return mh

    def _near(self, items: set[str], mh: MinHash) -> str | None:
        best: tuple[float, int] | None = None
        for key in self._lsh.query(mh):
            index = int(key)
            sim = jaccard(items, self._kept_shingles[index])
            # Highest similarity wins, the earliest kept sample breaks ties: the LSH returns
            # candidates in an order that depends on Python's hash seed.
            if sim >= self.threshold and (best is None or (sim, -index) > (best[0], -best[1])):
                best = (sim, index)
        return None if best is None else self._kept_ids[best[1]]

    def _decide(self, sample: dict[str, Any]) -> tuple[str | None, str, set[str], MinHash | None]:
        key = normalize(question_text(sample))
        if key in self._exact:
            return "duplicate", key, set(), None
        items = shingles(question_text(sample))
        mh = self._minhash(items) if items else None
        kept = self._near(items, mh) if mh is not None else None
        return (None if kept is None else f"near_duplicate:{kept}"), key, items, mh

    def check(self, sample: dict[str, Any]) -> str | None:
        """Whether `sample` duplicates a kept one, without keeping it.

        Returns:
            "duplicate", "near_duplicate:<id of the kept sample>", or None.
        """
        return self._decide(sample)[0]

    def check_and_add(self, sample: dict[str, Any]) -> str | None:
        """Check `sample` and keep it (index its question) when it is new.

        Returns:
            "duplicate" (same normalized question as a kept sample),
            "near_duplicate:<id of the kept sample>" (similarity >= threshold), or None (kept).
        """
        verdict, key, items, mh = self._decide(sample)
        if verdict is not None:
            self.counts[verdict.split(":", 1)[0]] += 1
            return verdict
        sample_id = str(sample.get("id") or hashlib.sha1(key.encode("utf-8")).hexdigest())
        index = len(self._kept_ids)
        self._exact[key] = sample_id
        self._kept_ids.append(sample_id)
        self._kept_shingles.append(items)
        if mh is not None:
            # Internal keys are positions: two samples may share an id, LSH keys may not.
            self._lsh.insert(str(index), mh)
        self.counts["kept"] += 1
        return None
