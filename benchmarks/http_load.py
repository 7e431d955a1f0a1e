"""A small open-loop HTTP load generator for the service benchmarks, meant to run in its own process.

Each stream sends its requests at a fixed rate whatever the server does (open loop), over keep-alive
connections, and a request's latency is measured from the moment it was *scheduled*, not sent: a server that
falls behind is charged for the queue it caused (no coordinated omission). Bounded by count and time.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stream:
    name: str
    method: str
    path: str
    rate: float  # requests per second
    bodies: list[bytes]  # one per request, sent in order; the stream ends when they run out
    connections: int = 32  # most requests in flight; more wait (their wait counts in their latency)


@dataclass
class StreamResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)  # of answered requests
    statuses: dict[int, int] = field(default_factory=dict)
    acknowledged: list[int] = field(default_factory=list)  # body positions answered 2xx
    failed: int = 0  # connection errors (e.g. the server was killed)
    failed_at_s: list[float] = field(default_factory=list)  # when each failure happened, from the start
    sent: int = 0


async def _send(host: str, port: int, pool: asyncio.Queue, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    try:
        reader, writer = pool.get_nowait()
    except asyncio.QueueEmpty:
        reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        writer.write(head + body)
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await reader.readexactly(length)
    except BaseException:
        writer.close()
        raise
    pool.put_nowait((reader, writer))
    return status, payload


async def _run_stream(host: str, port: int, stream: Stream, deadline: float, result: StreamResult) -> None:
    pool: asyncio.Queue = asyncio.Queue()
    slots = asyncio.Semaphore(stream.connections)
    start = time.perf_counter()
    tasks = []

    async def one(i: int, scheduled: float) -> None:
        try:
            async with slots:
                status, _ = await _send(host, port, pool, stream.method, stream.path, stream.bodies[i])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.failed += 1
            result.failed_at_s.append(time.perf_counter() - start)
            return
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            result.acknowledged.append(i)

    for i in range(len(stream.bodies)):
        scheduled = start + i / stream.rate
        if scheduled > deadline:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        tasks.append(asyncio.create_task(one(i, scheduled)))
    _, late = await asyncio.wait(tasks, timeout=max(1.0, deadline + 30 - time.perf_counter())) if tasks else ((), ())
    for task in late:  # still unanswered 30 s after the end: counted as failed
        task.cancel()
        result.failed += 1
    while not pool.empty():
        pool.get_nowait()[1].close()


def run_load(
    host: str, port: int, streams: list[Stream], duration_s: float, on_start: Callable[[], None] | None = None
) -> dict[str, StreamResult]:
    """Send every stream concurrently for at most `duration_s`; returns per-stream results. `on_start` is
    called as the streams start (their `failed_at_s` count from then).

    The collector is off meanwhile: in a process that also holds a big catalog (benchmarks/serving.py), a full
    collection paused the generator for 100+ ms, and the late sends were charged to the server as latency."""

    async def main() -> dict[str, StreamResult]:
        deadline = time.perf_counter() + duration_s
        results = {s.name: StreamResult(s.name) for s in streams}
        if on_start is not None:
            on_start()
        await asyncio.gather(*(_run_stream(host, port, s, deadline, results[s.name]) for s in streams))
        return results

    gc.collect()
    gc.disable()
    try:
        return asyncio.run(main())
    finally:
        gc.enable()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
