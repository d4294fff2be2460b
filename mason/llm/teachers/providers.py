"""`provider/model` names → the OpenAI-compatible endpoint and API key to use.

    resolve_endpoint(TeacherConfig(model="groq/llama-3.1-8b-instant"))
    # Endpoint(provider="groq", model="llama-3.1-8b-instant",
    #          base_urls=("https://api.groq.com/openai/v1",), api_key=<from GROQ_API_KEY>)

An explicit `base_url` always wins over the provider's default URL. The key comes from
`api_key` in the config, else the provider's usual environment variable; local servers
(ollama, vllm, llama.cpp, LM Studio, or any URL on this machine) need none and get
"not-needed" (the openai client refuses an empty key). The key is kept out of `repr` and is
never part of `Endpoint.model_id`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from mason.core.errors import MasonError

#: What local servers get as API key when none is configured (they ignore it).
NO_KEY = "not-needed"


@dataclass(frozen=True)
class Provider:
    """One OpenAI-compatible service.

    Attributes:
        name: the prefix users write (`groq/...`).
        base_url: its default endpoint.
        key_env: environment variable that usually holds its API key.
        local: a server on this machine: a missing key is fine.
    """

    name: str
    base_url: str
    key_env: str | None
    local: bool = False


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        Provider("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        Provider("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        Provider("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        Provider("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        Provider("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        Provider("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        # local servers: the env var is the one the server itself reads for its optional key
        Provider("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY", local=True),
        Provider("vllm", "http://localhost:8000/v1", "VLLM_API_KEY", local=True),
        Provider("llamacpp", "http://localhost:8080/v1", "LLAMA_API_KEY", local=True),
        Provider("lmstudio", "http://localhost:1234/v1", "LMSTUDIO_API_KEY", local=True),
    )
}


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach a teacher over the OpenAI API.

    Attributes:
        provider: the provider name (`openai`, `vllm`, ...).
        model: the model name sent in each request (the part after `provider/`).
        base_urls: one or more endpoints; requests are spread over them.
        api_key: the key sent as `Authorization: Bearer` (NO_KEY for local servers). Secret:
            excluded from `repr` and from `model_id`.
        custom_url: the URL(s) came from the config, not the provider's default.
    """

    provider: str
    model: str
    base_urls: tuple[str, ...]
    api_key: str = field(repr=False)
    custom_url: bool = False

    @property
    def model_id(self) -> str:
        """`provider/model@url[,url]` with credentials and query strings cut from the URLs."""
        urls = ",".join(sorted(public_url(u) for u in self.base_urls))
        return f"{self.provider}/{self.model}@{urls}"


def split_provider(model: str) -> tuple[str, str] | None:
    """(`provider`, `model`) when `model` starts with a known provider prefix, else None."""
    head, sep, rest = model.partition("/")
    if sep and rest and head.lower() in PROVIDERS:
        return head.lower(), rest
    return None


def public_url(url: str) -> str:
    """`url` without user:password, query string and fragment (safe to log and hash)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def is_local_url(url: str) -> bool:
    """Whether `url` points at this machine (localhost, 127.x, ::1): no key is required there."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_urls(value: str | list[str] | None) -> tuple[str, ...]:
    urls = [value] if isinstance(value, str) else list(value or [])
    urls = [u.strip() for u in urls if u and u.strip()]
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https"):
            raise MasonError(
                f"teacher base_url {public_url(url)!r} is not an http(s) URL",
                hint="write the full endpoint, e.g. http://localhost:8000/v1",
            )
    # a URL listed twice would just double its share of the traffic: keep the first
    return tuple(dict.fromkeys(urls))


def resolve_endpoint(
    model: str,
    *,
    base_url: str | list[str] | None = None,
    api_key: str | None = None,
    environ: dict[str, str] | None = None,
) -> Endpoint:
    """The endpoint for a `provider/model` name (or any model name with an explicit base_url).

    Args:
        model: `provider/model`; with `base_url` set, any model name (sent as written when it
            has no known provider prefix).
        base_url: endpoint(s) overriding the provider's default.
        api_key: key from the config (already `${ENV}`-interpolated); else the provider's env var.
        environ: the environment to read keys from (default `os.environ`).

    Returns:
        The `Endpoint`.

    Raises:
        MasonError: unknown provider without base_url; a hosted endpoint without a key (the
            message names the env var to set); a base_url that is not http(s).
    """
    env = os.environ if environ is None else environ
    split = split_provider(model)
    urls = _base_urls(base_url)
    if split is None:
        if not urls:
            known = ", ".join(PROVIDERS)
            raise MasonError(
                f"teacher {model!r} names no known provider and no base_url is set",
                hint=f"write `provider/model` with a provider among {known}, or set `base_url` "
                "to an OpenAI-compatible endpoint",
            )
        provider, name = Provider("openai-compatible", urls[0], "OPENAI_API_KEY"), model
    else:
        provider, name = PROVIDERS[split[0]], split[1]
    key = (api_key or "").strip() or (env.get(provider.key_env, "").strip() if provider.key_env else "")
    all_local = all(is_local_url(u) for u in (urls or (provider.base_url,)))
    if not key:
        if not (provider.local or all_local):
            where = ", ".join(public_url(u) for u in urls) if urls else provider.base_url
            raise MasonError(
                f"teacher {model!r} needs an API key for {where}, and none is set",
                hint=f"export {provider.key_env}=... (or set `api_key: ${{{provider.key_env}}}` in the "
                "teacher section; never the key itself)",
            )
        key = NO_KEY
    return Endpoint(provider.name, name, urls or (provider.base_url,), key, custom_url=bool(urls))
