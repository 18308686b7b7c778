"""Local fakes that speak each source's wire format, served through ``httpx.MockTransport``.

Every module here that defines ``contract_case()`` is picked up by the shared connector
contract (``tests/connectors/test_contract.py``); see ``tests/connectors/contract.py``.

Shared helpers for fakes live in this file: ``Faults`` (scripted failures for the next
calls) and ``json_response``.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx

FAULT_KINDS = ("500", "502", "503", "timeout", "connect", "bad_json")


class Faults:
    """Failures scripted for the next calls, consumed one per call, in order.

    ``"500"``/``"502"``/``"503"`` answer that status, ``"timeout"`` raises
    ``httpx.ReadTimeout``, ``"connect"`` raises ``httpx.ConnectError`` and ``"bad_json"``
    answers 200 with a truncated JSON body.
    """

    def __init__(self) -> None:
        self._next: deque[str] = deque()

    def add(self, kind: str, times: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self._next.extend([kind] * times)

    def __len__(self) -> int:
        return len(self._next)

    def take(self, request: httpx.Request, error_body: Any) -> httpx.Response | None:
        """Consume the next scripted fault: a response, an exception, or ``None``."""
        if not self._next:
            return None
        kind = self._next.popleft()
        if kind == "timeout":
            raise httpx.ReadTimeout("timed out (scripted)", request=request)
        if kind == "connect":
            raise httpx.ConnectError("connection refused (scripted)", request=request)
        if kind == "bad_json":
            return httpx.Response(
                200,
                content=b'{"data": [{"id": "1", "te',
                headers={"content-type": "application/json; charset=utf-8"},
            )
        return json_response(int(kind), error_body)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    merged = {"content-type": "application/json; charset=utf-8"}
    merged.update(headers or {})
    return httpx.Response(status, content=json.dumps(body).encode(), headers=merged)
