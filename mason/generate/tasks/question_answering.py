"""`question_answering`: single-turn questions about a chunk, answered from it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mason.generate.tasks.base import (
    GenContext,
    ask_teacher,
    make_sample,
    source_of,
    unique,
)


class QAPair(BaseModel):
    question: str = Field(min_length=3)
    answer: str = Field(min_length=1)


class QAAnswer(BaseModel):
    """What `question_answering.j2` asks for: `{"pairs": [{"question", "answer"}]}`."""

    pairs: list[QAPair] = Field(min_length=1)


class QuestionAnsweringGenerator:
    """One user question and one grounded assistant answer per sample."""

    name = "question_answering"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` QA samples from `chunk` (duplicate questions dropped).

        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """
        answer, hashes = await ask_teacher(ctx, "question_answering", chunk, n, QAAnswer)
        pairs = unique(answer.pairs, key=lambda p: p.question)[:n]
        return [
            make_sample(
                [{"role": "user", "content": p.question.strip()},
                 {"role": "assistant", "content": p.answer.strip()}],
                source=source_of(chunk), task=self.name, ctx=ctx, prompt_hashes=hashes,
            )
            for p in pairs
        ]
