"""Who is asking: the reader the reverse proxy signed in, and nobody else.

Behind the reading room's nginx (``monailabel_app/reading_room.py``) every request reaches MONAI Label with
two headers the proxy sets after HTTP basic sign-in over TLS: ``X-Forwarded-User`` (the signed-in user,
``$remote_user``; a value a client sent under that name is replaced, never passed on) and
``X-Spcxr-Proxy-Token`` (a secret the command generates at each start and gives only to nginx and this app).
:class:`ProxyIdentityMiddleware` answers 401 to any request without both, so a process on the server that
talks to the app's loopback port directly cannot pose as a reader either, and makes the reader known to the
code that serves the request (:data:`current_reader`: the audit log, the DICOM SEG's content creator).
"""

from __future__ import annotations

import hmac
import json
from contextvars import ContextVar
from typing import Any, Callable

__all__ = ["TOKEN_HEADER", "USER_HEADER", "ProxyIdentityMiddleware", "current_reader"]

USER_HEADER = "X-Forwarded-User"
TOKEN_HEADER = "X-Spcxr-Proxy-Token"

# the signed-in reader of the request being served (None outside a request, or without the proxy);
# Starlette copies it into the worker thread an endpoint runs in
current_reader: ContextVar[str | None] = ContextVar("current_reader", default=None)


class ProxyIdentityMiddleware:
    """ASGI middleware: only requests from the proxy, with a signed-in user, reach ``app``.

    Args:
        app: the ASGI application (MONAI Label's FastAPI app).
        token: the secret the proxy sends in :data:`TOKEN_HEADER`.
    """

    def __init__(self, app: Callable, token: str) -> None:
        if not token:
            raise ValueError("the proxy token must not be empty")
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan: the app's start-up and shutdown
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, list[bytes]] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.lower(), []).append(value)
        tokens = headers.get(TOKEN_HEADER.lower().encode(), [])
        users = headers.get(USER_HEADER.lower().encode(), [])
        # exactly one of each: a second user header would mean a client's value got through
        if len(tokens) != 1 or not hmac.compare_digest(tokens[0], self.token) or len(users) != 1:
            await _refuse(scope, send, "sign in through the reading room's address")
            return
        user = users[0].decode("utf-8", "replace").strip()
        if not user:
            await _refuse(scope, send, "no signed-in user")
            return
        reset = current_reader.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            current_reader.reset(reset)


async def _refuse(scope: dict, send: Callable, why: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": why}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
