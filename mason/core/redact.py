"""Redact secrets (API keys, tokens, passwords) from configs before they are stored or printed.

A config that reaches the tracker, a manifest or a log line goes through `redact` first, so
`${OPENAI_API_KEY}` interpolated into a teacher section never lands on disk in clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

# Key names that always hold a secret. Keys are normalized first (camelCase -> snake_case,
# "-", "." and spaces -> "_", lower case), so "apiKey", "API-KEY" and "openai_api_key" all match.
_SECRET_KEY_RE = re.compile(r"api_?key|secret|password|passwd|authorization|credential")

# "token" is a secret as a word of its own ("hf_token", "access_token", "token") but not in
# "max_tokens" or "tokenizer"...
_TOKEN_WORD_RE = re.compile(r"(?:^|_)token(?:$|_)")
# ...nor in tokenizer settings, which are plain text a run comparison needs to see.
_TOKENIZER_KEY_RE = re.compile(
    r"(?:^|_)(?:pad|eos|bos|unk|sep|cls|mask|special|start|end|stop|chat)_token(?:s)?(?:$|_)"
    r"|(?:^|_)token_ids?$"
)

# Values that are recognizably a credential whatever key holds them (a header list, a URL
# param, a key pasted into the wrong field): OpenAI/Anthropic-style "sk-...", Hugging Face
# "hf_...", GitHub "ghp_...", Slack "xox?-...", and "Bearer <token>" headers.
_SECRET_VALUE_RE = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{20,}"
    r"|\bhf_[A-Za-z0-9]{30,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}",
    re.IGNORECASE,
)


def _normalize_key(key: str) -> str:
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return re.sub(r"[\s.\-]+", "_", key).lower()


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def is_secret_key(key: object) -> bool:
    """True when a mapping key names a secret (api_key, token, secret, password, authorization).

    Matching is case-insensitive and ignores the separator style; tokenizer settings such as
    `max_tokens`, `tokenizer` or `pad_token` are not secrets.
    """
    if not isinstance(key, str):
        return False
    norm = _normalize_key(key)
    if _SECRET_KEY_RE.search(norm):
        return True
    return bool(_TOKEN_WORD_RE.search(norm)) and not _TOKENIZER_KEY_RE.search(norm)


def looks_like_secret(value: object) -> bool:
    """True when a string value contains something shaped like a credential (sk-..., Bearer ...)."""
    return isinstance(value, str) and bool(_SECRET_VALUE_RE.search(value))


def redact(obj: Any) -> Any:
    """A copy of `obj` with secrets replaced by "***".

    Walks mappings, lists and tuples. The value of every key for which `is_secret_key` holds is
    replaced, whatever its type, unless it is None or "" (nothing to hide, and "***" would
    wrongly suggest a key was set). In every other string, credential-shaped parts
    (see `redact_text`) are replaced.
    Other objects are returned as they are (pass `model.model_dump()` for a pydantic model).

    Returns:
        the redacted copy; `obj` itself is never modified.
    """
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if is_secret_key(key) and not _is_empty(value):
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def redact_text(text: str) -> str:
    """`text` with every credential-shaped part (sk-..., hf_..., Bearer ...) replaced by "***".

    For free text such as error messages, where the rest of the line is worth keeping.
    """
    return _SECRET_VALUE_RE.sub(REDACTED, text)
