"""A local HTTP server speaking the LangFuse public API endpoints that the `langfuse` SDK reads, with
recorded response shapes, cursor pagination, Basic-auth key checks and scripted faults.

    with LangfuseServer(public_key="pk-lf-test", secret_key="sk-lf-test") as lf:
        lf.fail_next("/api/public/v2/observations", 429, headers={"retry-after-ms": "10"})
        monkeypatch.setenv("LANGFUSE_HOST", lf.url) ...

Endpoints (shapes as LangFuse v3 servers return them, camelCase, input/output as raw strings):

- `GET /api/public/projects` -> `{"data": [{"id", "name", "organization", "metadata"}]}`
- `GET /api/public/v2/observations?fields&limit&cursor&filter` -> `{"data": [...], "meta": {"cursor"}}`;
  the `filter` JSON is applied (traceName, startTime, tags, environment, userId, sessionId).
- `GET /api/public/v3/scores?traceId=a,b&limit&cursor&fields` -> `{"data": [...], "meta": {"limit", "cursor"}}`

Wrong keys get 401 `{"message": "Invalid credentials..."}` like the real server. `requests` records
every request (method, path, query, headers).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

PROJECT = {"id": "cm-proj-support", "name": "support", "organization": {"id": "cm-org-1", "name": "Acme"},
           "metadata": {}}


def _obs(oid: str, trace: str, kind: str, start: str, *, name: str, parent: str | None = None,
         input: Any = None, output: Any = None, model: str | None = None, metadata: dict | None = None,
         trace_name: str = "qa", tags: tuple[str, ...] = ("prod",), environment: str = "production",
         user: str | None = "user-1", session: str | None = None) -> dict[str, Any]:
    """One observation as `GET /api/public/v2/observations` returns it (fields core..trace_context)."""
    raw = (lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v)))
    return {
        "id": oid, "traceId": trace, "startTime": start, "endTime": start, "projectId": PROJECT["id"],
        "parentObservationId": parent, "type": kind, "isRootObservation": parent is None, "name": name,
        "level": "DEFAULT", "statusMessage": None, "version": None, "environment": environment,
        "bookmarked": False, "public": False, "userId": user, "sessionId": session,
        "completionStartTime": None, "createdAt": start, "updatedAt": start,
        "input": raw(input), "output": raw(output), "metadata": metadata or {},
        "model": model, "internalModelId": None, "modelParameters": None,
        "traceName": trace_name, "tags": list(tags), "release": None,
    }


def _score(sid: str, trace: str, name: str, value: Any, when: str, data_type: str = "NUMERIC") -> dict[str, Any]:
    return {"id": sid, "projectId": PROJECT["id"], "name": name, "value": value, "dataType": data_type,
            "source": "API", "timestamp": when, "environment": "production", "createdAt": when, "updatedAt": when,
            "subject": {"kind": "trace", "id": trace}}


SYSTEM = {"role": "system", "content": "You answer questions about masonry."}
Q_MORTAR = "What holds bricks together?"
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}


def recorded_observations() -> list[dict[str, Any]]:
    """Five traces: two answers to the same question (scored 0.9 and 0.2), an agent trace with a tool
    call, a `dev`-tagged trace, and a trace of another task (`summarize`)."""
    q_messages = [SYSTEM, {"role": "user", "content": Q_MORTAR}]
    call = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    agent_in = [SYSTEM, {"role": "user", "content": "Can I lay bricks in Paris today?"}]
    agent_seen = agent_in + [{"role": "assistant", "content": None, "tool_calls": [call]},
                             {"role": "tool", "tool_call_id": "call_w1", "content": "{\"temp_c\": 21, \"rain\": false}"}]
    return [
        _obs("o-t1", "t1", "SPAN", "2026-11-01T10:00:00.000Z", name="qa", input={"question": Q_MORTAR},
             output="Mortar holds bricks together.", metadata={"app": "help-desk"}),
        _obs("o-t1-g", "t1", "GENERATION", "2026-11-01T10:00:00.100Z", name="chat", parent="o-t1",
             input=q_messages, output={"role": "assistant", "content": "Mortar holds bricks together."},
             model="gpt-4o-mini"),
        _obs("o-t2", "t2", "SPAN", "2026-11-02T10:00:00.000Z", name="qa", input={"question": Q_MORTAR},
             output="Glue."),
        _obs("o-t2-g", "t2", "GENERATION", "2026-11-02T10:00:00.100Z", name="chat", parent="o-t2",
             input=q_messages, output={"role": "assistant", "content": "Glue."}, model="gpt-4o-mini"),
        _obs("o-t3", "t3", "AGENT", "2026-11-03T10:00:00.000Z", name="qa",
             input={"question": "Can I lay bricks in Paris today?"}, output="Yes: 21 °C and dry."),
        _obs("o-t3-g1", "t3", "GENERATION", "2026-11-03T10:00:00.100Z", name="chat", parent="o-t3",
             input={"messages": agent_in, "tools": [WEATHER_TOOL]},
             output={"role": "assistant", "content": None, "tool_calls": [call]}, model="gpt-4o-mini"),
        _obs("o-t3-tool", "t3", "TOOL", "2026-11-03T10:00:00.200Z", name="get_weather", parent="o-t3",
             input={"city": "Paris"}, output={"temp_c": 21, "rain": False}),
        _obs("o-t3-g2", "t3", "GENERATION", "2026-11-03T10:00:00.300Z", name="chat", parent="o-t3",
             input={"messages": agent_seen, "tools": [WEATHER_TOOL]},
             output={"role": "assistant", "content": "Yes: 21 °C and dry."}, model="gpt-4o-mini"),
        _obs("o-t4", "t4", "SPAN", "2026-11-04T10:00:00.000Z", name="qa", input={"question": "What is a trowel?"},
             output="A flat tool to spread mortar.", tags=("dev",), environment="development"),
        _obs("o-t5", "t5", "SPAN", "2026-11-05T10:00:00.000Z", name="summarize", input="long text",
             output="short text", trace_name="summarize"),
    ]


def recorded_scores() -> list[dict[str, Any]]:
    return [
        _score("s1", "t1", "helpfulness", 0.9, "2026-11-01T11:00:00.000Z"),
        _score("s2", "t2", "helpfulness", 0.2, "2026-11-02T11:00:00.000Z"),
        _score("s3", "t3", "helpfulness", 1.0, "2026-11-03T11:00:00.000Z"),
        _score("s3b", "t3", "resolved", True, "2026-11-03T11:00:00.000Z", data_type="BOOLEAN"),
        _score("s4", "t4", "helpfulness", 0.5, "2026-11-04T11:00:00.000Z"),
        _score("s1-old", "t1", "helpfulness", 0.1, "2026-11-01T10:30:00.000Z"),  # superseded by s1
    ]


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    return json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"] if cursor else 0


def _matches(obs: dict[str, Any], cond: dict[str, Any]) -> bool:
    column, op, value = cond["column"], cond["operator"], cond.get("value")
    if column == "traceName":
        return obs["traceName"] == value
    if column == "startTime":
        return obs["startTime"] >= value if op == ">=" else obs["startTime"] < value
    if column in ("tags", "traceTags"):
        return set(value) <= set(obs["tags"]) if op == "all of" else bool(set(value) & set(obs["tags"]))
    if column == "environment":
        return obs["environment"] in value
    if column in ("userId", "sessionId"):
        return obs[column] == value
    raise ValueError(f"the test server does not filter on {column}")


class LangfuseServer:
    """See the module docstring. `observations`/`scores` default to the recorded ones."""

    def __init__(self, *, public_key: str = "pk-lf-test", secret_key: str = "sk-lf-test",
                 observations: Iterable[dict[str, Any]] | None = None, scores: Iterable[dict[str, Any]] | None = None,
                 max_page: int = 1000):
        self.keys = (public_key, secret_key)
        self.observations = list(recorded_observations() if observations is None else observations)
        self.scores = list(recorded_scores() if scores is None else scores)
        self.max_page = max_page
        self.requests: list[dict[str, Any]] = []
        self._faults: list[tuple[str, int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, path: str, status: int, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next `times` requests to `path` get `status` (429, 500...) with `headers`."""
        with self._lock:
            self._faults += [(path, status, dict(headers or {}))] * times

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- request handling ------------------------------------------------------------------
    def _fault(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            for i, (p, status, headers) in enumerate(self._faults):
                if p == path:
                    del self._faults[i]
                    return status, headers
        return None

    def _authorized(self, header: str | None) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.keys[0]}:{self.keys[1]}".encode()).decode()
        return header == expected

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]], default: int) -> tuple[list, str | None]:
        limit = min(int(query.get("limit", [default])[0]), self.max_page)
        start = _offset(query.get("cursor", [None])[0])
        page = items[start:start + limit]
        return page, _cursor(start + limit) if start + limit < len(items) else None

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == "/api/public/projects":
            return 200, {"data": [PROJECT]}
        if path == "/api/public/v2/observations":
            conds = json.loads(query["filter"][0]) if "filter" in query else []
            rows = [o for o in self.observations if all(_matches(o, c) for c in conds)]
            rows.sort(key=lambda o: (o["startTime"], o["id"]), reverse=True)  # newest first, like the server
            page, cursor = self._page(rows, query, 50)
            return 200, {"data": page, "meta": {"cursor": cursor} if cursor else {}}
        if path == "/api/public/v3/scores":
            traces = set(query["traceId"][0].split(",")) if "traceId" in query else None
            rows = [s for s in self.scores if traces is None or s["subject"]["id"] in traces]
            page, cursor = self._page(rows, query, 50)
            meta: dict[str, Any] = {"limit": int(query.get("limit", [50])[0])}
            if cursor:
                meta["cursor"] = cursor
            return 200, {"data": page, "meta": meta}
        return 404, {"message": f"no route {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                query = parse_qs(url.query)
                with server._lock:
                    server.requests.append({"method": "GET", "path": url.path, "query": query,
                                            "headers": dict(self.headers.items())})
                fault = server._fault(url.path)
                if not server._authorized(self.headers.get("Authorization")):
                    status, body, headers = 401, {"message": "Invalid credentials. Confirm that you've configured "
                                                             "the correct host."}, {}
                elif fault is not None:
                    status, headers = fault
                    body = {"message": "Rate limit exceeded" if status == 429 else "Internal Server Error"}
                else:
                    status, body = server.answer(url.path, query)
                    headers = {}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
