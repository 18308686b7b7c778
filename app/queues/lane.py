"""The agents' lane: claims and closes answered before FastAPI's routing.

Every agent's entry is a claim and a close (``POST /queues/{queue}/claim``, then
``POST /entries/{id}/resolve`` or ``/dismiss``): most of the API's write traffic. Through
FastAPI each such request also pays for the exception middleware, the exit stack, matching
against the route table, dependency solving and the request's parsing and validation,
about as much CPU as the claim itself costs the server (``bench/README.md``, *Claims, fifth
pass*). This lane, an ASGI middleware inside the app's own (request ids, metrics, rate-limit
headers, body size limit), answers those three requests itself with the same steps:

- the key (``get_principal``: the key cache, else a look-up), the rate-limit charge
  (``limit_rate``) and the agent role, in the order ``charged_agent`` runs them;
- the endpoint's own body (``router.claim_response``, ``router.close_response``);
- an error raised on the way is answered by the app's own exception handler for it, as
  FastAPI's exception middleware would (problem+json); an error without a handler
  propagates to the server error middleware (500), as from a route.

It answers nothing differently: whatever it does not recognise as one of the three, and a
body or path FastAPI would refuse (422), passes untouched to FastAPI, before anything was
charged, with the body it read replayed. The routes stay declared in FastAPI (the OpenAPI
schema, and the lane's fallback); ``scope["route"]`` is set to them, so the metrics label
the lane's requests by route template like every other request.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import get_principal, require_role
from app.auth.service import Principal
from app.db import MAX_ID
from app.ops.ratelimit import limit_rate
from app.queues import router
from app.queues.schemas import DismissBody, ResolveBody

CLAIM_PATH = "/queues/{queue}/claim"
_CLAIM = re.compile(r"/queues/([^/]+)/claim")
# An entry id as FastAPI's ``RowId`` takes it: digits, 1 to 2³¹−1 (checked after matching).
_CLOSE = re.compile(r"/entries/([0-9]{1,10})/(resolve|dismiss)")
_CLOSES: dict[str, tuple[type[BaseModel], str, str, str]] = {
    # action: its body, the body's field, the entry's new state, the audit action
    "resolve": (ResolveBody, "note", "resolved", "entry.resolve"),
    "dismiss": (DismissBody, "reason", "dismissed", "entry.dismiss"),
}

Handler = Callable[[Principal], Awaitable[Response]]

# The declared routes (the metrics' labels): the agents' router is included as it is.
ROUTES: dict[str, BaseRoute] = {
    path: route
    for route in router.agents_router.routes
    if isinstance(path := getattr(route, "path", None), str)
}


class AgentLane:
    """Answers claim, resolve and dismiss before FastAPI's routing (module docstring).

    Install as the innermost middleware (``app.add_middleware`` first).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/queues/"):
            matched = _CLAIM.fullmatch(path)
            if matched is not None:
                queue = matched.group(1)
                state = scope["app"].state

                async def claim(principal: Principal) -> Response:
                    return await router.claim_response(state, principal, queue)

                await self.answer(scope, receive, send, CLAIM_PATH, claim)
                return
        elif path.startswith("/entries/"):
            matched = _CLOSE.fullmatch(path)
            if matched is not None and 1 <= int(matched.group(1)) <= MAX_ID:
                await self.close(scope, receive, send, int(matched.group(1)), matched.group(2))
                return
        await self.app(scope, receive, send)

    async def close(
        self, scope: Scope, receive: Receive, send: Send, entry_id: int, action: str
    ) -> None:
        model, field, new_state, audit_action = _CLOSES[action]
        body, replay = await read_body(receive)
        try:
            # FastAPI reads a JSON body whatever its content type says (a declared
            # non-JSON type is its to refuse); anything it would refuse goes to it.
            parsed = model.model_validate_json(body) if json_content(scope) else None
        except ValidationError:
            parsed = None
        if parsed is None:
            await self.app(scope, replay, send)
            return
        text: str = getattr(parsed, field)
        state = scope["app"].state

        async def close(principal: Principal) -> Response:
            return await router.close_response(
                state, principal, entry_id, new_state, text, audit_action
            )

        await self.answer(scope, replay, send, f"/entries/{{entry_id}}/{action}", close)

    async def answer(
        self, scope: Scope, receive: Receive, send: Send, template: str, handler: Handler
    ) -> None:
        scope["route"] = ROUTES[template]
        request = Request(scope, receive)
        try:
            principal = await get_principal(request)
            await limit_rate(request, principal)
            response = await handler(require_role(principal, "agent"))
        except Exception as exc:
            response = await self.handled(request, exc)
        await response(scope, receive, send)

    async def handled(self, request: Request, exc: Exception) -> Response:
        """The app's answer to ``exc``, as Starlette's exception middleware finds it: by
        status code for an HTTP exception, then by the exception's classes in order."""
        handlers: dict[Any, Callable[..., Any]] = request.app.exception_handlers
        handler = None
        if isinstance(exc, HTTPException):
            handler = handlers.get(exc.status_code)
        if handler is None:
            handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
        if handler is None:
            raise exc
        response: Response = await handler(request, exc)
        return response


def json_content(scope: Scope) -> bool:
    """The body is JSON as FastAPI reads it: no content type, or ``application/json``
    (or a ``+json`` type)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return True


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it out again (or the client's
    disconnect, if it went away meanwhile), then reads on from the original."""
    chunks: list[bytes] = []
    disconnect: Message | None = None
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            disconnect = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    first = disconnect or {"type": "http.request", "body": body, "more_body": False}
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return first

    return body, replay
