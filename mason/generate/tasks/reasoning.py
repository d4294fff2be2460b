"""`reasoning`: multi-step questions answered with a step-by-step rationale, then the answer."""

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


class Problem(BaseModel):
    question: str = Field(min_length=3)
    steps: list[str] = Field(min_length=1)
    final_answer: str = Field(min_length=1)


class ReasoningAnswer(BaseModel):
    """What `reasoning.j2` asks for: `{"problems": [{"question", "steps", "final_answer"}]}`."""

    problems: list[Problem] = Field(min_length=1)


def format_rationale(steps: list[str], final_answer: str) -> str:
    """The assistant turn: numbered steps, a blank line, then `Final answer: ...`."""
    lines = [f"{i}. {s.strip()}" for i, s in enumerate((s for s in steps if s.strip()), start=1)]
    return "\n".join(lines) + f"\n\nFinal answer: {final_answer.strip()}"


class ReasoningGenerator:
    """The assistant content is the rationale followed by the final answer, in one message."""

    name = "reasoning"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` reasoning samples from `chunk`.

        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """
        answer, hashes = await ask_teacher(ctx, "reasoning", chunk, n, ReasoningAnswer)
        problems = unique(answer.problems, key=lambda p: p.question)[:n]
        return [
            make_sample(
                [{"role": "user", "content": p.question.strip()},
                 {"role": "assistant", "content": format_rationale(p.steps, p.final_answer)}],
                source=source_of(chunk), task=self.name, ctx=ctx, prompt_hashes=hashes,
            )
            for p in problems
        ]
