"""`multi_turn`: conversations of 2 to 4 user/assistant exchanges grounded in a chunk."""

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

MIN_TURNS, MAX_TURNS = 2, 4


class Exchange(BaseModel):
    user: str = Field(min_length=1)
    assistant: str = Field(min_length=1)


class Conversation(BaseModel):
    turns: list[Exchange] = Field(min_length=MIN_TURNS)


class MultiTurnAnswer(BaseModel):
    """What `multi_turn.j2` asks for: `{"conversations": [{"turns": [{"user", "assistant"}]}]}`."""

    conversations: list[Conversation] = Field(min_length=1)


class MultiTurnGenerator:
    """Conversations whose every assistant turn is grounded in the chunk."""

    name = "multi_turn"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` conversations; exchanges beyond the fourth are cut off.

        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """
        answer, hashes = await ask_teacher(ctx, "multi_turn", chunk, n, MultiTurnAnswer)
        conversations = unique(answer.conversations, key=lambda c: c.turns[0].user)[:n]
        samples = []
        for conv in conversations:
            messages: list[dict[str, Any]] = []
            for ex in conv.turns[:MAX_TURNS]:
                messages += [{"role": "user", "content": ex.user.strip()},
                             {"role": "assistant", "content": ex.assistant.strip()}]
            samples.append(make_sample(messages, source=source_of(chunk), task=self.name, ctx=ctx,
                                       prompt_hashes=hashes, extra_meta={"turns": len(messages) // 2}))
        return samples
