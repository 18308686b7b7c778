"""A streaming Zendesk ticket export on loopback, in its own process.

It speaks the wire format of ``GET /api/v2/incremental/tickets/cursor.json`` (the same
format ``tests/connectors/fakes/zendesk_api.py`` fakes, see reference/connectors.md §4.1):
oldest first, ``per_page`` ≤ 1000, side-loaded ``users``, ``after_cursor`` and
``end_of_stream``. Unlike the test fake it stores nothing: ticket ``i`` is generated from
``bench.texts.text_for(i)`` when a page asks for it, so a million tickets cost no memory
and every page costs the same. It runs in a separate process so the pipeline under
measurement does not share its interpreter (and GIL) with the source.
"""

from __future__ import annotations

import base64
import multiprocessing
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from bench.texts import text_for

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
SPAN = timedelta(days=30)  # tickets are spread over the 30 days before the end time
USERS = 5000
TOKEN = "bench-token"
TOKEN_ENV = "ANDON_BENCH_ZENDESK_TOKEN"


def zendesk_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticket(index: int, total: int, end: datetime, base_url: str) -> dict[str, Any]:
    subject, description = text_for(index)
    created = end - SPAN + SPAN * (index / max(total, 1))
    stamp = zendesk_time(created)
    return {
        "id": index + 1,
        "url": f"{base_url}/api/v2/tickets/{index + 1}.json",
        "subject": subject,
        "description": description,
        "status": "open",
        "priority": ("low", "normal", "high")[index % 3],
        "tags": ["bench"],
        "requester_id": 10_000 + index % USERS,
        "submitter_id": 10_000 + index % USERS,
        "created_at": stamp,
        "updated_at": stamp,
        "generated_timestamp": int(created.timestamp()),
        "via": {"channel": "web"},
    }


def user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "name": f"Customer {user_id}", "email": f"c{user_id}@example.com"}


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"bench:{position}".encode()).decode()


def _decode(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        return None
    prefix, _, position = text.partition(":")
    return int(position) if prefix == "bench" and position.isdigit() else None


def _serve(total: int, ready: Any, port_value: Any) -> None:
    end = datetime.now(UTC) - timedelta(minutes=5)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            base_url = f"http://{self.headers.get('host')}"
            if url.path == "/api/v2/users/me.json":
                return self._json(200, {"user": user(1)})
            if url.path != EXPORT_PATH:
                return self._json(404, {"error": "InvalidEndpoint"})
            per_page = min(int(params.get("per_page", "1000")), 1000)
            if "cursor" in params:
                position = _decode(params["cursor"])
                if position is None:
                    return self._json(400, {"error": "InvalidPaginationParameter"})
            else:
                position = 0
            stop = min(position + per_page, total)
            tickets = [ticket(i, total, end, base_url) for i in range(position, stop)]
            users = sorted({t["requester_id"] for t in tickets})
            after = _encode(stop)
            body = {
                "tickets": tickets,
                "users": [user(u) for u in users],
                "after_cursor": after,
                "after_url": f"{base_url}{EXPORT_PATH}?cursor={after}",
                "before_cursor": _encode(position),
                "before_url": None,
                "end_of_stream": stop >= total,
            }
            return self._json(200, body)

        def _json(self, status: int, body: Any) -> None:
            content = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_value.value = server.server_address[1]
    ready.set()
    server.serve_forever()


class FakeZendesk:
    """``with FakeZendesk(total) as fake:`` serves ``total`` tickets at ``fake.url``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.url = ""
        self._process: multiprocessing.process.BaseProcess | None = None

    def config(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "email": "bench@example.com",
            "token_env": TOKEN_ENV,
            "requests_per_minute": 1_000_000,
        }

    def __enter__(self) -> FakeZendesk:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        port = context.Value("i", 0)
        self._process = context.Process(target=_serve, args=(self.total, ready, port), daemon=True)
        self._process.start()
        if not ready.wait(30):
            raise RuntimeError("the fake Zendesk did not start")
        self.url = f"http://127.0.0.1:{port.value}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)
