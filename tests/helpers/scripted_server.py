"""A real HTTP server speaking the OpenAI `/v1/chat/completions` format, with scripted faults.

    from tests.helpers.scripted_server import ScriptedServer, ok, rate_limited, error

    with ScriptedServer(script=[rate_limited(1), error(500), ok("hi")], latency=0.05) as srv:
        ... TeacherConfig(model="vllm/test", base_url=srv.base_url) ...
        assert srv.request_count == 3

Each POST takes the next behaviour of the script; once the script is used up, every request
gets `default` (an `ok` reply whose text is `responder(body)`, by default "echo: <last user
message>"). A behaviour says what to send: a normal completion, a status code with headers
(429 + Retry-After), a sleep (to run past the client's timeout), a body that is not JSON, a
completion with no choices, or tool calls.

The server runs in a daemon thread (stdlib `ThreadingHTTPServer`, one thread per connection,
HTTP/1.1 keep-alive), adds a fixed `latency` to every request, lets at most
`concurrency_cap` requests be served at once (the others wait, as on a saturated backend) and
records every request body and header, the request count and the most requests in flight at
once (`max_concurrent`, counted on arrival, before the cap).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = [
    "Behaviour", "ScriptedServer", "echo_responder", "error", "hang", "malformed", "no_choices",
    "ok", "rate_limited", "tool_call",
]


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request.

    Attributes:
        kind: "ok", "status", "sleep", "malformed", "no_choices" or "tool_calls".
        status: HTTP status ("status" kind).
        text: reply text ("ok"; None: use the server's responder) or error message ("status").
        headers: extra response headers (e.g. Retry-After).
        seconds: how long to sleep before answering ("sleep" kind; then it answers "ok").
        tool_calls: OpenAI-format tool calls ("tool_calls" kind).
    """

    kind: str
    status: int = 200
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    tool_calls: tuple[dict[str, Any], ...] = ()


def ok(text: str | None = None) -> Behaviour:
    """A normal completion with `text` (None: the server's responder decides)."""
    return Behaviour("ok", text=text)


def rate_limited(retry_after: float | str | None = 1, *, status: int = 429) -> Behaviour:
    """429 with a `Retry-After` header (seconds, or an HTTP date string); None: no header."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Behaviour("status", status=status, text="Rate limit reached, slow down", headers=headers)


def error(status: int = 500, message: str = "internal error", headers: dict[str, str] | None = None) -> Behaviour:
    """An OpenAI-style error body `{"error": {"message": ...}}` with this status."""
    return Behaviour("status", status=status, text=message, headers=dict(headers or {}))


def hang(seconds: float) -> Behaviour:
    """Sleep `seconds` before answering normally (to run past a client's timeout)."""
    return Behaviour("sleep", seconds=seconds)


def malformed() -> Behaviour:
    """200 with `Content-Type: application/json` and a body that is not JSON."""
    return Behaviour("malformed")


def no_choices() -> Behaviour:
    """200 with a JSON completion object whose `choices` list is empty."""
    return Behaviour("no_choices")


def tool_call(name: str, arguments: dict[str, Any] | str) -> Behaviour:
    """A completion whose assistant message calls one tool (content null, finish_reason tool_calls)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": args}}
    return Behaviour("tool_calls", tool_calls=(call,))


def echo_responder(body: dict[str, Any]) -> str:
    """Default reply text: "echo: " + the last user message's content."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    return f"echo: {content if isinstance(content, str) else json.dumps(content)}"


class ScriptedServer:
    """The server (see module docstring). Use as a context manager, or call start()/stop().

    Args:
        script: behaviours for the first requests, in order of arrival.
        default: behaviour once the script is used up (default `ok()`).
        latency: seconds added to every request before it is answered.
        concurrency_cap: requests served at once; more wait (None: no cap).
        responder: text of "ok" replies without a fixed text, from the request body.
    """

    def __init__(
        self,
        script: Iterable[Behaviour] = (),
        *,
        default: Behaviour | None = None,
        latency: float = 0.0,
        concurrency_cap: int | None = None,
        responder: Callable[[dict[str, Any]], str] = echo_responder,
    ):
        self.script = list(script)
        self.default = default or ok()
        self.latency = latency
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self.request_count = 0
        self.max_concurrent = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._cap = threading.Semaphore(concurrency_cap) if concurrency_cap else None
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        # the default backlog (5) drops connections when 32+ clients connect at once
        httpd.request_queue_size = 256
        httpd.daemon_threads = True
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-openai-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in hang()/latency
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (still known after `stop`, for "server went away" tests)."""
        assert self._port is not None, "server not started"
        return self._port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, what a TeacherConfig's base_url takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- bookkeeping (called from handler threads) --------------------------------------------

    def _arrive(self, body: dict[str, Any], headers: dict[str, str]) -> Behaviour:
        with self._lock:
            self.request_count += 1
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
            self.requests.append(body)
            self.headers.append(headers)
            self.arrivals.append(time.monotonic())
            return self.script.pop(0) if self.script else self.default

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # without TCP_NODELAY, headers and body leave in two segments and the client's delayed ACK
    # adds ~40 ms to every response: a latency no real server has
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        owner = self.owner
        behaviour = owner._arrive(body, {k.lower(): v for k, v in self.headers.items()})
        try:
            if owner._cap is not None:
                owner._cap.acquire()
            try:
                owner.sleep(owner.latency)
                self._respond(behaviour, body)
            finally:
                if owner._cap is not None:
                    owner._cap.release()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer
        finally:
            owner._leave()

    def _respond(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
        if behaviour.kind == "status":
            self._send(behaviour.status, {"error": {"message": behaviour.text, "type": "scripted",
                                                    "code": behaviour.status}}, behaviour.headers)
        elif behaviour.kind == "malformed":
            self._send_raw(200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "message": ', behaviour.headers)
        elif behaviour.kind == "no_choices":
            self._send(200, {**_completion(body, ""), "choices": []}, behaviour.headers)
        elif behaviour.kind == "tool_calls":
            out = _completion(body, None)
            out["choices"][0]["message"]["tool_calls"] = list(behaviour.tool_calls)
            out["choices"][0]["finish_reason"] = "tool_calls"
            self._send(200, out, behaviour.headers)
        else:
            if behaviour.kind == "sleep":
                self.owner.sleep(behaviour.seconds)
            text = behaviour.text if behaviour.text is not None else self.owner.responder(body)
            self._send(200, _completion(body, text), behaviour.headers)

    def _send(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(obj).encode("utf-8"), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _completion(body: dict[str, Any], text: str | None) -> dict[str, Any]:
    # token counts: words, a stand-in that is deterministic and grows with the text
    prompt_words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_words = len((text or "").split())
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                  "total_tokens": prompt_words + completion_words},
    }


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes: `python -m tests.helpers.scripted_server --latency 0.2 --cap 32`.

    Prints the base URL as the first line of stdout, so a parent process can read it. Running
    the server in its own process keeps its threads off the client's GIL (benchmarks).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="scripted OpenAI-compatible server (always answers ok)")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--cap", type=int, default=None, help="requests served at once")
    args = parser.parse_args(argv)
    with ScriptedServer(latency=args.latency, concurrency_cap=args.cap) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or exited
        print(f"requests={server.request_count} max_concurrent={server.max_concurrent}", flush=True)


if __name__ == "__main__":
    main()
