"""A load driver in its own process: ``python -m bench.load URL --concurrency 16 --seconds 5``.

Clients hit one URL (or, with ``--walk``, walk ``GET /items`` pages following ``next_cursor``
from the first page, starting over at the end) for a fixed time and print one JSON object:
requests, errors, requests/s, p50/p99 in ms, the driver's own CPU seconds, and for walks the
number of duplicate ids seen within a walk (must be 0). ``--post`` sends POST with an empty
JSON body.

The clients are ``Http``: one keep-alive HTTP/1.1 connection each over asyncio streams, a
request written in one call, the response read by ``Content-Length`` (or chunks). That is
all a benchmark against our own server needs, and it costs the driver ~50 µs of CPU per
request where httpx costs ~2 ms: with httpx on a 2-core machine the driver, not the server,
was the limit (bench/README.md). ``bench/claims.py`` uses the same client for its agents.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit


class HttpError(RuntimeError):
    """The server answered something that is not HTTP/1.1 as we speak it."""


class Http:
    """One keep-alive HTTP/1.1 connection to ``base`` (``http://host:port``)."""

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        fixed = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> tuple[int, bytes]:
        """(status, body). Reconnects once if the server closed an idle connection."""
        if params:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if json_body is not None or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        payload = (head + "\r\n").encode() + body
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._reader, self._writer
            assert reader is not None
            assert writer is not None
            try:
                writer.write(payload)
                return await self._response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json_body: Any = None) -> tuple[int, bytes]:
        return await self.request("POST", path, json_body={} if json_body is None else json_body)

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x answer: {status_line!r}")
        status = int(rest[:3])
        length: int | None = None
        chunked = close = False
        for line in lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:  # no length: the body runs to the end of the connection
            content = await reader.read()
            close = True
        if close:
            await self.close()
        return status, content


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def user(
    args: argparse.Namespace,
    stop: float,
    latencies: list[float],
    stats: dict[str, Any],
    index: int,
) -> None:
    parts = urlsplit(args.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    cursor: str | None = None
    seen: set[int] = set()
    async with Http(f"http://{parts.netloc}", args.header_dict) as http:
        while time.perf_counter() < stop:
            params = {"cursor": cursor} if cursor else None
            started = time.perf_counter()
            if args.post:
                status, body = await http.post(path.replace("{agent}", str(index)))
            else:
                status, body = await http.get(path, params)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                stats["errors"] += 1
                stats.setdefault("statuses", {}).setdefault(str(status), 0)
                stats["statuses"][str(status)] += 1
                continue
            if args.post:
                stats["claimed"] += 1 if status == 200 else 0
            if args.walk:
                page = json.loads(body)
                ids = [item["id"] for item in page["items"]]
                stats["duplicates"] += sum(1 for i in ids if i in seen)
                seen.update(ids)
                stats["walked"] += len(ids)
                cursor = page.get("next_cursor")
                if cursor is None:
                    seen.clear()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    stats: dict[str, Any] = {"errors": 0, "duplicates": 0, "walked": 0, "claimed": 0}
    parts = urlsplit(args.url)
    async with Http(f"http://{parts.netloc}", args.header_dict) as probe:
        await probe.get("/healthz")
    cpu = cpu_seconds()
    started = time.perf_counter()
    stop = started + args.seconds
    await asyncio.gather(*(user(args, stop, latencies, stats, i) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "driver_cpu_ms_per_request": cpu * 1000 / max(1, len(latencies)),
        **stats,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--walk", action="store_true")
    parser.add_argument("--post", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    args = parser.parse_args(argv)
    args.header_dict = dict(h.split(": ", 1) for h in args.header)
    print(json.dumps(asyncio.run(main_async(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
