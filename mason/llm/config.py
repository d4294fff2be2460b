"""Config of one chat model (teacher or judge): the `teacher:` and `judge_llm:` values of pipeline.yaml."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mason.core.config import Section


class TeacherConfig(Section):
    """A chat model used as teacher or judge. `teacher: NAME` is shorthand for `{model: NAME}`."""

    model: str = Field(
        ...,
        description=(
            "`provider/model` (`openai/gpt-4o-mini`, `ollama/llama3.1`, `vllm/...`, `llamacpp/...`, "
            "`lmstudio/...`, `openrouter/...`, `together/...`, `groq/...`), a local transformers folder, "
            "a `.gguf` file, a built-in (`smollm2-135m-instruct`), or `extractive` (no LLM)."
        ),
    )
    base_url: str | list[str] | None = Field(
        None, description="OpenAI-compatible endpoint(s); several URLs spread the load. Overrides the provider's URL."
    )
    api_key: str | None = Field(
        None, description="API key; write `${ENV_VAR}`, never the key itself. Default: the provider's usual env var."
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(1024, ge=1, description="Longest answer, in tokens.")
    timeout: float = Field(120.0, gt=0, description="Seconds before one request is abandoned (and retried).")
    max_retries: int = Field(6, ge=0, description="Retries on 429, 5xx, timeouts and dropped connections.")
    max_concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Cap on the request rate (none by default).")
    price_per_million_input: float | None = Field(None, ge=0, description="USD per 1M prompt tokens, for cost reports.")
    price_per_million_output: float | None = Field(None, ge=0, description="USD per 1M completion tokens.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"model": data} if isinstance(data, str) else data
