"""`trace://langfuse/<project>/<task>`: traces named `<task>` read through the official `langfuse` SDK.

Keys and host come from `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_HOST` (or
`LANGFUSE_BASE_URL`; default LangFuse Cloud). The SDK's REST client (`langfuse.api.LangfuseAPI`)
reads what the SDK's own readers read:

- `GET /api/public/projects`: the keys' project, checked against `<project>` (name or id);
- `GET /api/public/v2/observations` with a `filter` (`traceName = <task>`, start time, tags,
  environment, user, session), followed page by page through `meta.cursor`;
- `GET /api/public/v3/scores` for those traces (50 trace ids a request), cursor-paginated.

The SDK retries 429 (honouring `Retry-After`) and 5xx answers (`retries`, default 3); what still
fails, bad keys included, becomes one `InputError` that says what to fix. Each trace becomes one
record (see `mason.tuning.records`): the root observation's input and output; `messages` as the last
generation saw them (its input messages plus its answer), or rebuilt from the generations and tool
observations in start-time order; tool calls in order; the trace's scores by name; the root's
metadata plus `trace_id`, `trace_name`, `tags`, `timestamp`, `user_id`, `session_id`, `environment`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mason.core.errors import InputError
from mason.tuning.records import (
    clean_message,
    is_messages,
    keep_by_score,
    make_record,
    normalize_call,
    parse_json_text,
    text_of,
)

if TYPE_CHECKING:
    from mason.tuning.records import SourceRef

FILTERS = ("since", "until", "tags", "environment", "user_id", "session_id", "score", "min_score", "max_score",
           "limit", "page_size", "retries", "timeout")
#: the observation field groups a record needs
FIELDS = "core,basic,time,io,metadata,model,trace_context"
DEFAULT_HOST = "https://cloud.langfuse.com"
_USAGE = "trace://langfuse/<project>/<task>"


def _host() -> str:
    return (os.environ.get("LANGFUSE_HOST") or os.environ.get("LANGFUSE_BASE_URL") or DEFAULT_HOST).rstrip("/")


def client(timeout: float = 60) -> Any:
    """The SDK's REST client for the keys and host in the environment.

    Raises:
        InputError: the langfuse package is missing, or a key is not set.
    """
    try:
        from langfuse.api import LangfuseAPI
    except ImportError:
        raise InputError("trace://langfuse sources need the langfuse SDK",
                         hint='pip install "mason[tuning]"') from None
    from importlib.metadata import version

    public, secret = os.environ.get("LANGFUSE_PUBLIC_KEY"), os.environ.get("LANGFUSE_SECRET_KEY")
    missing = [n for n, v in (("LANGFUSE_PUBLIC_KEY", public), ("LANGFUSE_SECRET_KEY", secret)) if not v]
    if missing:
        raise InputError(f"LangFuse keys are not set: {', '.join(missing)}",
                         hint="export LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY (and LANGFUSE_HOST for a self-hosted "
                              "LangFuse) from the project's settings")
    return LangfuseAPI(base_url=_host(), username=public, password=secret, x_langfuse_sdk_name="python",
                       x_langfuse_sdk_version=version("langfuse"), x_langfuse_public_key=public, timeout=timeout)


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    """Turn the SDK's errors into one clear InputError."""
    from langfuse.api.core.api_error import ApiError

    host = _host()
    try:
        yield
    except ApiError as e:
        body = e.body if isinstance(e.body, str) else json.dumps(e.body, default=str)[:300]
        if e.status_code in (401, 403):
            raise InputError(f"LangFuse at {host} refused the keys ({e.status_code}) while {what}: {body}",
                             hint="check LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (a project's key pair) and "
                                  "LANGFUSE_HOST") from None
        raise InputError(f"LangFuse at {host} answered {e.status_code} while {what} (after the SDK's retries): {body}",
                         hint="try again later, or narrow the time range (`since`/`until`)") from None
    except OSError as e:  # connection refused, DNS, TLS
        raise InputError(f"cannot reach LangFuse at {host} while {what}: {e}",
                         hint="check LANGFUSE_HOST and the network") from None
    except Exception as e:  # httpx transport errors are not OSErrors
        if type(e).__module__.startswith(("httpx", "httpcore")):
            raise InputError(f"cannot reach LangFuse at {host} while {what}: {e}",
                             hint="check LANGFUSE_HOST and the network") from None
        raise


def _iso(value: Any, name: str) -> str:
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"filter {name}={value!r} is not a date (ISO 8601, e.g. 2026-01-31 or "
                             "2026-01-31T12:00:00Z)") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def conditions(task: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The observations API's `filter` conditions for the trace name and the server-side filters."""
    out: list[dict[str, Any]] = [{"type": "string", "column": "traceName", "operator": "=", "value": task}]
    if filters.get("since") is not None:
        out.append({"type": "datetime", "column": "startTime", "operator": ">=", "value": _iso(filters["since"], "since")})
    if filters.get("until") is not None:
        out.append({"type": "datetime", "column": "startTime", "operator": "<", "value": _iso(filters["until"], "until")})
    tags = filters.get("tags")
    if tags:
        out.append({"type": "arrayOptions", "column": "tags", "operator": "all of",
                    "value": [tags] if isinstance(tags, str) else list(tags)})
    if filters.get("environment"):
        env = filters["environment"]
        out.append({"type": "stringOptions", "column": "environment", "operator": "any of",
                    "value": [env] if isinstance(env, str) else list(env)})
    for key, column in (("user_id", "userId"), ("session_id", "sessionId")):
        if filters.get(key):
            out.append({"type": "string", "column": column, "operator": "=", "value": str(filters[key])})
    return out


def fetch_observations(api: Any, task: str, filters: dict[str, Any], options: dict[str, Any]) -> list[Any]:
    """Every observation of the traces named `task` (and the filters), all pages, each once."""
    seen: dict[str, Any] = {}
    cursor = None
    query = json.dumps(conditions(task, filters))
    while True:
        with _api_errors("reading observations"):
            page = api.observations.get_many(fields=FIELDS, limit=int(filters.get("page_size") or 100), cursor=cursor,
                                             filter=query, request_options=options)
        for obs in page.data:
            seen.setdefault(obs.id, obs)
        cursor = page.meta.cursor
        if not cursor:
            return list(seen.values())


def fetch_scores(api: Any, trace_ids: list[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scores by trace id, then by name (the latest of a name wins), numeric, boolean or categorical."""
    found: dict[str, list[tuple[str, str, Any]]] = {}
    for i in range(0, len(trace_ids), 50):
        cursor = None
        while True:
            with _api_errors("reading scores"):
                page = api.scores.get_many(trace_id=",".join(trace_ids[i:i + 50]), fields="subject", limit=100,
                                           cursor=cursor, request_options=options)
            for score in page.data:
                subject = getattr(score, "subject", None)
                tid = getattr(subject, "trace_id", None) or getattr(subject, "id", None)
                if getattr(subject, "kind", "trace") not in ("trace", "observation") or tid is None:
                    continue
                found.setdefault(tid, []).append((score.timestamp.isoformat(), score.name, score.value))
            cursor = page.meta.cursor
            if not cursor:
                break
    return {tid: {name: value for _, name, value in sorted(items, key=lambda x: x[0])} for tid, items in found.items()}


# --------------------------------------------------------------------------- normalization


def _answer(value: Any) -> dict[str, Any]:
    """A generation's output as an assistant message (text, a message, a list ending with one, tool calls)."""
    value = parse_json_text(value)
    if is_messages(value):
        value = value[-1]
    if isinstance(value, dict):
        if "role" in value:
            return clean_message({**value, "role": "assistant"})
        if value.get("tool_calls"):
            return clean_message({"role": "assistant", "content": value.get("content"), "tool_calls": value["tool_calls"]})
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict) and "message" in choices[0]:
            return _answer(choices[0]["message"])
    return {"role": "assistant", "content": text_of(value)}


def _generation_messages(value: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """(messages, tools) of a generation's input when it is a chat request."""
    value = parse_json_text(value)
    if is_messages(value):
        return [clean_message(m) for m in value], None
    if isinstance(value, dict) and is_messages(value.get("messages")):
        tools = value.get("tools") if isinstance(value.get("tools"), list) else None
        return [clean_message(m) for m in value["messages"]], tools
    return None, None


def _rebuilt(root_input: Any, steps: list[Any]) -> list[dict[str, Any]]:
    """The conversation from generations and tool observations in order, when no generation saw it whole."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": text_of(root_input)}]
    pending: list[dict[str, Any]] = []  # calls whose results have not come yet
    n = 0
    for obs in steps:
        if obs.type == "GENERATION":
            answer = _answer(obs.output)
            messages.append(answer)
            pending = list(answer.get("tool_calls") or [])
        else:  # a TOOL observation: its result, after the call that asked for it
            call = next((c for c in pending if c["function"]["name"] == obs.name), None)
            if call is None:  # the call was not logged as a generation: add it
                call = normalize_call({"id": f"call_{n}", "name": obs.name, "arguments": parse_json_text(obs.input) or {}})
                last = messages[-1]
                if last["role"] == "assistant" and not content_text_of(last):
                    last.setdefault("tool_calls", []).append(call)
                else:
                    messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            else:
                pending.remove(call)
            n += 1
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": text_of(parse_json_text(obs.output))})
    return messages


def content_text_of(message: dict[str, Any]) -> str:
    return text_of(message.get("content"))


def trace_record(trace_id: str, observations: list[Any], scores: dict[str, Any], uri: str) -> dict[str, Any]:
    """One trace's observations (any order) as a record."""
    obs = sorted(observations, key=lambda o: (o.start_time, o.id))
    root = next((o for o in obs if o.is_root_observation), None) or next((o for o in obs if not o.parent_observation_id),
                                                                         obs[0])
    steps = [o for o in obs if o.type in ("GENERATION", "TOOL") and o is not root]
    generations = [o for o in steps if o.type == "GENERATION"]
    root_in, root_out = parse_json_text(root.input), parse_json_text(root.output)
    messages: list[dict[str, Any]] = []
    tools = None
    if root.type == "GENERATION" and not generations:
        generations = [root]
    seen, tools = _generation_messages(generations[-1].input) if generations else (None, None)
    if seen is not None:
        messages = seen + [_answer(generations[-1].output)]
    elif steps:
        messages = _rebuilt(root_in, steps)
    elif root_out is not None:
        messages = [{"role": "user", "content": text_of(root_in)}, _answer(root_out)]
    if root_out is None and messages and messages[-1]["role"] == "assistant":
        root_out = messages[-1]["content"]
    meta = dict(root.metadata or {}) if isinstance(root.metadata, dict) else {}
    meta.update({
        "trace_id": trace_id, "trace_name": root.trace_name or root.name, "tags": list(root.tags or []),
        "timestamp": root.start_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "user_id": root.user_id, "session_id": root.session_id, "environment": root.environment,
        "observations": len(obs), "models": sorted({o.model for o in generations if o.model}),
        "source": {"uri": uri, "trace": trace_id},
    })
    rec = make_record(trace_id, input=root_in, output=root_out, messages=messages, scores=scores, metadata=meta)
    if tools:
        rec["tools"] = tools
    return rec


def _client_filters(records: list[dict[str, Any]], filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The filters again on the records (the server pre-filters; pages may overlap time bounds)."""
    tags = filters.get("tags")
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    since = _iso(filters["since"], "since") if filters.get("since") is not None else None
    until = _iso(filters["until"], "until") if filters.get("until") is not None else None
    out = []
    for rec in records:
        meta = rec["metadata"]
        if tags and not set(tags) <= set(meta.get("tags") or []):
            continue
        if since and meta["timestamp"] < since or until and meta["timestamp"] >= until:
            continue
        out.append(rec)
    return keep_by_score(out, filters)


def resolve_langfuse(ref: SourceRef, filters: dict[str, Any], base_dir: Any = None) -> list[dict[str, Any]]:
    """The records of `trace://langfuse/<project>/<task>` (see the module docstring), oldest first;
    `limit` keeps the most recent ones.

    Raises:
        InputError: a malformed URI, keys not set or refused, another project's keys, an API error
            after the SDK's retries, an unreachable host.
    """
    project, _, task = ref.rest.partition("/")
    if not project or not task:
        raise InputError(f"{ref.uri!r} must name a project and a task: {_USAGE}")
    api = client(timeout=float(filters.get("timeout") or 60))
    options = {"max_retries": int(filters.get("retries", 3)), "timeout_in_seconds": int(filters.get("timeout") or 60)}
    with _api_errors("checking the project"):
        projects = api.projects.get(request_options=options).data
    if not any(project in (p.name, p.id) for p in projects):
        names = ", ".join(repr(p.name) for p in projects) or "none"
        raise InputError(f"the LangFuse keys belong to project {names}, not {project!r}",
                         hint=f"use trace://langfuse/<that project>/{task}, or the keys of project {project!r}")
    by_trace: dict[str, list[Any]] = {}
    for obs in fetch_observations(api, task, filters, options):
        if obs.trace_id:
            by_trace.setdefault(obs.trace_id, []).append(obs)
    scores = fetch_scores(api, sorted(by_trace), options) if by_trace else {}
    records = [trace_record(tid, obs, scores.get(tid, {}), ref.uri) for tid, obs in by_trace.items()]
    records.sort(key=lambda r: (r["metadata"]["timestamp"], r["id"]))
    records = _client_filters(records, filters)
    limit = filters.get("limit")
    return records[-int(limit):] if limit else records
