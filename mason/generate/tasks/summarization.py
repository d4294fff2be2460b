"""`summarization`: an instruction to summarize the passage (included in the user turn)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mason.generate.tasks.base import (
    GenContext,
    ask_teacher,
    make_sample,
    require_some,
    source_of,
    unique,
)


class Summary(BaseModel):
    instruction: str = Field(min_length=3)
    summary: str = Field(min_length=1)


class SummarizationAnswer(BaseModel):
    """What `summarization.j2` asks for: `{"summaries": [{"instruction", "summary"}]}`."""

    summaries: list[Summary] = Field(min_length=1)


def summary_prompt(instruction: str, passage: str) -> str:
    """The user turn: the instruction, a blank line, then the passage."""
    return f"{instruction.strip()}\n\n{passage.strip()}"


def _problem(s: Summary, passage: str) -> str | None:
    # a "summary" as long as the passage is a copy, which teaches nothing
    if len(s.summary.split()) >= len(passage.split()):
        return "the summary is not shorter than the passage"
    return None


class SummarizationGenerator:
    """User: instruction + passage. Assistant: a faithful summary, shorter than the passage."""

    name = "summarization"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` summaries of `chunk` (summaries not shorter than the passage are dropped).

        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """
        passage = chunk["text"]

        def check(answer: SummarizationAnswer) -> None:
            require_some([_problem(s, passage) for s in answer.summaries], "summaries")

        answer, hashes = await ask_teacher(ctx, "summarization", chunk, n, SummarizationAnswer, check=check)
        kept = [s for s in answer.summaries if _problem(s, passage) is None]
        return [
            make_sample(
                [{"role": "user", "content": summary_prompt(s.instruction, passage)},
                 {"role": "assistant", "content": s.summary.strip()}],
                source=source_of(chunk), task=self.name, ctx=ctx, prompt_hashes=hashes,
            )
            for s in unique(kept, key=lambda s: s.summary)[:n]
        ]
