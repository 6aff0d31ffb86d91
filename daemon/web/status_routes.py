"""The status page and its JSON API as routes: path in, handler out.

Handlers are plain functions of typed inputs returning a ``Reply``; this module only maps
paths to them and turns a handler's bug into a 500 (logged) instead of a dropped connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from daemon.web.api import api_history, api_status
from daemon.web.http.routes import Request, Response, Route
from daemon.web.page import render_page
from daemon.web.sources import PageSources, Reply

log = structlog.get_logger(component="web")

PAGE_PATHS = ("/", "/api/status", "/api/history")


def handler_for(path: str) -> Callable[[PageSources, str], Reply] | None:
    """The handler serving ``path`` (None: not a status page path)."""
    return {
        "/": render_page,
        "/api/status": lambda sources, _query: api_status(sources),
        "/api/history": api_history,
    }.get(path)


def serve_page(sources: PageSources, path: str, query: str) -> Reply | None:
    """Answer a GET of ``path`` (None when the path is not ours)."""
    handler = handler_for(path)
    if handler is None:
        return None
    try:
        return handler(sources, query)
    except Exception as exc:  # one broken view must not take the listener down
        log.error("page.failed", path=path, error=repr(exc))
        return Reply(500, (("Content-Type", "text/plain; charset=utf-8"),),
                     b"internal error; see the daemon log\n")


def to_response(reply: Reply) -> Response:
    """A handler's reply as the HTTP stack's response."""
    headers = tuple((k, v) for k, v in reply.headers if k.lower() != "content-type")
    content_type = next((v for k, v in reply.headers if k.lower() == "content-type"),
                        "application/octet-stream")
    return Response(reply.status, reply.body, content_type, headers)


def page_routes(sources: PageSources) -> dict[str, Route]:
    """The status page routes for the metrics listener (rendered off the event loop)."""
    routes: dict[str, Route] = {}
    for path in PAGE_PATHS:
        async def handle(request: Request, path: str = path) -> Response:
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(None, serve_page, sources, path, request.query)
            assert reply is not None
            return to_response(reply)
        routes[path] = Route(handle)
    return routes
