"""The LLM client layer: every call MASON makes to a chat model (teacher, judge, tuning) goes through here.

`config.TeacherConfig` names a model; `teachers` picks its backend from a registry (OpenAI-compatible
endpoints, llama.cpp, transformers, `mason.teachers` plugins); `client.open_client` adds retries, rate
limits, concurrency and cost; `cache.RequestCache` answers a repeated request from SQLite; `structured`
asks for JSON and validates it. Importing this package imports neither openai nor torch nor llama_cpp.
"""
