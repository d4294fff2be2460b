"""Teacher request throughput: TeacherClient with max_concurrency=32 vs a serial loop, same process.

    python bench/generate.py [--requests 256] [--serial 16] [--latency 0.2] [--concurrency 32]

Starts the scripted OpenAI-compatible server of the test helpers (real HTTP on 127.0.0.1) with a
fixed latency per request (default 200 ms, a fast hosted model's time to a short answer) and a
cap of 32 requests served at once, in its own process (as a real server would be: in this
process its 32 handler threads would compete with the client for the GIL; `--in-process` to
see that). Sends `--requests` distinct requests through
`TeacherClient.complete` (official openai client underneath, cache disabled) with
`max_concurrency=32`, then `--serial` requests one after another through the same client path
(extrapolated rate). Prints requests/s for both and the ratio.

Target: >= 0.8 x 32 = 25.6x serial (the latency hides behind concurrency; what is left is
client overhead: the event loop, httpx, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mason.llm.client import TeacherClient, open_client
from mason.llm.config import TeacherConfig
from mason.llm.teachers.base import ChatRequest
from tests.helpers.scripted_server import ScriptedServer


def _requests(n: int, offset: int) -> list[ChatRequest]:
    return [ChatRequest.of([{"role": "user", "content": f"Question number {offset + i}: what is {i} + {i}?"}],
                           max_tokens=64) for i in range(n)]


async def _concurrent(client: TeacherClient, requests: list[ChatRequest]) -> tuple[float, float]:
    """(wall seconds, CPU seconds this process spent: the client's own overhead)."""
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client.complete(r) for r in requests))
    return time.perf_counter() - started, time.process_time() - cpu


async def _serial(client: TeacherClient, requests: list[ChatRequest]) -> float:
    started = time.perf_counter()
    for r in requests:
        await client.complete(r)
    return time.perf_counter() - started


async def _bench(base_url: str, n: int, n_serial: int, concurrency: int) -> tuple[float, tuple[float, float], TeacherClient]:
    cfg = TeacherConfig(model="vllm/bench", base_url=base_url, max_concurrency=concurrency, timeout=30)
    client = open_client(cfg, base_dir=ROOT, cache=None)
    try:
        await client.complete(_requests(1, -1)[0])  # warm-up: imports, first connection
        serial = await _serial(client, _requests(n_serial, 0))
        concurrent = await _concurrent(client, _requests(n, n_serial))
    finally:
        await client.aclose()
    return serial, concurrent, client


@contextlib.contextmanager
def _server(latency: float, cap: int, in_process: bool) -> Iterator[tuple[str, list[str]]]:
    """Yields (base_url, report lines filled in when the server stops)."""
    report: list[str] = []
    if in_process:
        with ScriptedServer(latency=latency, concurrency_cap=cap) as server:
            yield server.base_url, report
        report.append(f"requests={server.request_count} max_concurrent={server.max_concurrent}")
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.scripted_server", "--latency", str(latency), "--cap", str(cap)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        yield proc.stdout.readline().strip(), report
        proc.stdin.close()  # EOF: the server prints its counts and exits
        report.append(proc.stdout.read().strip())
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=256, help="requests sent concurrently")
    parser.add_argument("--serial", type=int, default=16, help="requests sent one by one (rate extrapolated)")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="client max_concurrency and server cap")
    parser.add_argument("--in-process", action="store_true", help="run the server in this process")
    args = parser.parse_args()

    with _server(args.latency, args.concurrency, args.in_process) as (base_url, report):
        serial_s, (concurrent_s, cpu_s), client = asyncio.run(
            _bench(base_url, args.requests, args.serial, args.concurrency))
    serial_rate = args.serial / serial_s
    concurrent_rate = args.requests / concurrent_s
    ratio = concurrent_rate / serial_rate
    target = 0.8 * args.concurrency
    where = "in this process" if args.in_process else "own process"
    print(f"server     : {args.latency * 1000:.0f} ms latency, cap {args.concurrency}, {where}; {report[0]}")
    print(f"serial     : {args.serial:4d} requests in {serial_s:6.2f}s  -> {serial_rate:7.2f} samples/s")
    print(f"concurrent : {args.requests:4d} requests in {concurrent_s:6.2f}s  -> {concurrent_rate:7.2f} samples/s "
          f"(max_concurrency={args.concurrency})")
    print(f"ratio      : {ratio:.1f}x serial (target >= {target:.1f}x; ideal {args.concurrency}x)")
    cpu_ms = 1000 * cpu_s / args.requests
    print(f"client CPU : {cpu_ms:.2f} ms per request (one free core would sustain ~{1000 / cpu_ms:.0f} requests/s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"stats      : {client.stats.as_dict()}")
    return 0 if ratio >= target else 1


if __name__ == "__main__":
    sys.exit(main())
