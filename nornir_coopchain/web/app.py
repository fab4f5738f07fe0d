"""The dashboard's ASGI app: HTML pages, the same data as JSON under ``/api``, live events.

Routes (docs/dashboard.md):

- ``/`` and ``/api/proposals``: the proposals, filtered by ``state`` and ``resource_set``;
- ``/proposals/{id}`` and ``/api/proposals/{id}``: one proposal;
- ``/proposals/{id}/proofs/{host}.json``: one host's inclusion proof (a download);
- ``/api/events?from_block=N``: the contract's events from block N, and the next cursor;
- ``/api/events/stream?from_block=N``: the same as server-sent events, polled from a cursor.

Read-only: every route is a GET. Errors are a page (or ``{"error": ...}`` under ``/api``)
with a status code: 400 malformed input, 404 unknown proposal or host, 409 content that does
not match the chain, 503 the chain cannot be used, 500 anything else (logged, never shown).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from nornir_coopchain.exceptions import ChainError, ChangeRefused, ConfigError, CoopchainError
from nornir_coopchain.web.views import STATES, Dashboard

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_log = logging.getLogger(__name__)


class BadInput(Exception):
    """Raised when a request's path or query is malformed (HTTP 400)."""


def _status(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, BadInput):
        return 400, "Bad request"
    if isinstance(exc, ConfigError):
        return 404, "Not found"
    if isinstance(exc, ChangeRefused):
        return 409, "Content does not match the chain"
    if isinstance(exc, ChainError):
        return 503, "The chain cannot be used"
    return 500, "Internal error"


def _proposal_id(request: Request) -> int:
    text = request.path_params["proposal_id"]
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 20:
        raise BadInput(f"{text!r} is not a proposal number (a whole number from 1)")
    return int(text)


def _from_block(request: Request) -> int:
    text = request.query_params.get("from_block") or request.headers.get("last-event-id") or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise BadInput(f"from_block {text!r} is not a block number")
    return int(text)


def _filters(request: Request) -> dict[str, str | None]:
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise BadInput(f"state {state!r} is not one of {', '.join(STATES)}")
    return {"state": state, "resource_set": request.query_params.get("resource_set") or None}


def create_app(
    dashboard: Dashboard,
    *,
    operator: str | None = None,
    poll_interval: float = 2.0,
    stream_rounds: int = 300,
) -> Starlette:
    """The dashboard app over ``dashboard``.

    Arguments:
        dashboard: the reader of the chain, journal and inventory.
        operator: this node's operator ID (its tenancy is highlighted in diffs).
        poll_interval: seconds between two polls of the event stream.
        stream_rounds: polls before an event stream ends (the browser reconnects with
            ``Last-Event-ID``), so no connection is held forever.
    """
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.globals["operator"] = operator

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def proposals(request: Request) -> Response:
        filters = _filters(request)
        rows = dashboard.proposals(**filters)
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {
                    "contract": dashboard.coop.address,
                    "filters": filters,
                    "proposals": [row.model_dump(mode="json") for row in rows],
                }
            )
        context = {
            "rows": rows,
            "filters": filters,
            "states": STATES,
            "resource_sets": dashboard.resource_sets(),
            "from_block": dashboard.head() + 1,
            "contract": dashboard.coop.address,
        }
        return page(request, "list.html", context)

    def proposal(request: Request) -> Response:
        detail = dashboard.proposal(_proposal_id(request))
        if request.url.path.startswith("/api/"):
            return JSONResponse(detail.model_dump(mode="json"))
        context = {
            "p": detail,
            "from_block": dashboard.head() + 1,
            "live_proposal": detail.row.proposal_id,
            "contract": dashboard.coop.address,
        }
        return page(request, "proposal.html", context)

    def proof(request: Request) -> Response:
        proposal_id, host = _proposal_id(request), request.path_params["host"]
        body = dashboard.proof(proposal_id, host)
        filename = f"proposal-{proposal_id}-{host}.json"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(body, media_type="application/json", headers=headers)

    def events(request: Request) -> Response:
        return JSONResponse(dashboard.events_since(_from_block(request)).model_dump(mode="json"))

    async def stream(request: Request) -> Response:
        start = _from_block(request)

        async def feed() -> AsyncIterator[str]:
            cursor = start
            yield f"retry: {int(poll_interval * 1000)}\n\n"
            for _ in range(stream_rounds):
                if await request.is_disconnected():
                    return
                try:
                    batch = await run_in_threadpool(dashboard.events_since, cursor)
                except CoopchainError as exc:
                    problem = {"type": type(exc).__name__, "message": str(exc)}
                    yield f"event: problem\ndata: {json.dumps(problem)}\n\n"
                else:
                    for event in batch.events:
                        data = event.model_dump_json()
                        yield f"id: {batch.next_block}\nevent: chain\ndata: {data}\n\n"
                    cursor = batch.next_block
                    yield f": cursor {cursor}\n\n"
                await anyio.sleep(poll_interval)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(feed(), media_type="text/event-stream", headers=headers)

    def failure(request: Request, exc: Exception) -> Response:
        status, title = _status(exc)
        message = str(exc) if status != 500 else "an unexpected error; see the server's log"
        if status == 500:
            _log.error("dashboard request %s failed", request.url.path, exc_info=exc)
        if request.url.path.startswith("/api/"):
            error = {"type": type(exc).__name__, "message": message, "status": status}
            return JSONResponse({"error": error}, status_code=status)
        return page(request, "error.html", {"title": title, "message": message}, status)

    def not_found(request: Request, exc: Exception) -> Response:
        return failure(request, ConfigError(f"no page at {request.url.path}"))

    routes = [
        Route("/", proposals),
        Route("/proposals/{proposal_id}", proposal),
        Route("/proposals/{proposal_id}/proofs/{host}.json", proof),
        Route("/api/proposals", proposals),
        Route("/api/proposals/{proposal_id}", proposal),
        Route("/api/proposals/{proposal_id}/proofs/{host}", proof),
        Route("/api/events", events),
        Route("/api/events/stream", stream),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    handlers: dict[Any, Any] = {
        404: not_found,
        BadInput: failure,
        CoopchainError: failure,
        Exception: failure,
    }
    return Starlette(routes=routes, exception_handlers=handlers)
