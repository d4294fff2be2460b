"""`preference`: a question with a good (chosen) and a plausible flawed (rejected) answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from mason.generate.tasks.base import (
    GenContext,
    ask_teacher,
    make_sample,
    normalize,
    require_some,
    source_of,
    unique,
)

Flaw = Literal["wrong_detail", "incomplete", "ungrounded"]


class PreferenceItem(BaseModel):
    question: str = Field(min_length=3)
    good_answer: str = Field(min_length=1)
    flawed_answer: str = Field(min_length=1)
    flaw: Flaw

    @field_validator("flaw", mode="before")
    @classmethod
    def _spelling(cls, value: Any) -> Any:
        # "Wrong detail" / "wrong-detail" are the same label; don't spend a retry on them
        return value.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(value, str) else value


class PreferenceAnswer(BaseModel):
    """What `preference.j2` asks for: `{"items": [{"question", "good_answer", "flawed_answer", "flaw"}]}`."""

    items: list[PreferenceItem] = Field(min_length=1)


def _problem(item: PreferenceItem) -> str | None:
    # identical answers give a preference pair with no signal (and a zero DPO margin)
    if normalize(item.good_answer) == normalize(item.flawed_answer):
        return "good_answer and flawed_answer are the same; the flawed answer must differ in content"
    return None


class PreferenceGenerator:
    """Messages end with the user turn; `chosen`/`rejected` are assistant messages."""

    name = "preference"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` preference samples (items whose two answers are the same are dropped).

        Returns samples with `chosen`, `rejected` and `meta.flaw`.
        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """

        def check(answer: PreferenceAnswer) -> None:
            require_some([_problem(i) for i in answer.items], "items")

        answer, hashes = await ask_teacher(ctx, "preference", chunk, n, PreferenceAnswer, check=check)
        items = unique([i for i in answer.items if _problem(i) is None], key=lambda i: i.question)[:n]
        return [
            make_sample(
                [{"role": "user", "content": i.question.strip()}],
                chosen={"role": "assistant", "content": i.good_answer.strip()},
                rejected={"role": "assistant", "content": i.flawed_answer.strip()},
                source=source_of(chunk), task=self.name, ctx=ctx, prompt_hashes=hashes,
                extra_meta={"flaw": i.flaw},
            )
            for i in items
        ]
