"""Serve an ``httpx.MockTransport`` handler over real HTTP on loopback.

The connector fakes speak each API's wire format as transport handlers; crash tests need
the same fake reachable from another process (``andon sync`` killed with SIGKILL), so
this bridge puts a real socket in front of the handler. Absolute URLs the fake writes
(Link headers) are rewritten from the fake's base URL to the bridge's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx

Handler = Callable[[httpx.Request], httpx.Response]
HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class HttpBridge:
    def __init__(self, handler: Handler, fake_base_url: str) -> None:
        self.handler = handler
        self.fake_base_url = fake_base_url.rstrip("/")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> HttpBridge:
        bridge = self

        class RequestHandler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = httpx.Request(
                    self.command,
                    bridge.fake_base_url + self.path,
                    headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
                    content=body,
                )
                response = bridge.handler(request)
                content = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.multi_items():
                    if name.lower() in HOP_HEADERS:
                        continue
                    self.send_header(name, value.replace(bridge.fake_base_url, bridge.url))
                self.send_header("Content-Length", str(len(content)))
                try:
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    # The client was killed while its answer was held: that is the test.
                    self.close_connection = True

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
