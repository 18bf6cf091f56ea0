"""Every error the worker's web server answers is JSON: ``{"error": "<what went wrong>", ...}``.

The API's own views already answer their errors as JSON (``View.error``). Everything else
aiohttp answers by itself is plain text: no route (404, e.g. ``/customers/`` or
``/customers/a/b``), a method the route does not take (405), an unexpected exception (500),
and requests the HTTP parser refuses before any route is looked at (a 9,000-byte URL, an
oversized header, a garbled request line). Two pieces turn those into the same JSON shape:

* ``json_errors``: an aiohttp middleware around every route (HTTP exceptions, plain-text
  error responses and unexpected exceptions; the ``Allow`` header of a 405 is kept);
* ``answer_protocol_errors_as_json``: the parser's refusals never reach a middleware (aiohttp
  answers them from ``RequestHandler.handle_error``, with a logged traceback that quotes the
  start of the URL); they are answered 414 (URL too long), 431 (header too large) or 400, as
  JSON, logged as one line without traceback or URL.

Shape: ``error`` is always there (a sentence for a person); views may add context fields
(e.g. ``customer_id`` for an unknown customer, the readiness flags for a 503). Logs never
carry the request path (it can hold a customer id): only the route pattern or the status.
"""
from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

JSON = "application/json"


def error_response(status: int, message: str, headers=None, **context) -> web.Response:
    """The JSON error answer: ``{"error": message, **context}`` with ``status``."""
    return web.Response(status=status, text=json.dumps({"error": message, **context}), content_type=JSON,
                        headers=headers)


def _message(status: int, reason: str | None = None) -> str:
    known = {404: "no such resource", 405: "method not allowed", 414: "URL too long",
             431: "request header fields too large", 500: "internal error"}
    if status in known:
        return known[status]
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return (reason or "error").lower()


def _route(request: web.BaseRequest) -> str:
    """The matched route's pattern (``/customers/{customer_id}``), never the path itself."""
    try:
        return request.match_info.route.resource.canonical
    except AttributeError:
        return "(no route)"


@web.middleware
async def json_errors(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, _message(exc.status, exc.reason), headers=headers)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:  # noqa: BLE001 - a bug: answered 500 as JSON, logged with its traceback
        log.exception("internal error answering %s %s", request.method, _route(request))
        return error_response(500, _message(500))
    if response.status >= 400 and not (response.content_type or "").endswith("json"):
        return error_response(response.status, _message(response.status, response.reason),
                              headers={k: v for k, v in response.headers.items() if k in ("Allow", "WWW-Authenticate")})
    return response


def protocol_error_status(exc: BaseException | None) -> int:
    """HTTP status for a request the parser refused: 414 URL too long, 431 header too large, else 400."""
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        if isinstance(line, str):
            line = line.encode("latin-1", "replace")
        # The parser quotes the start of the line it refused: a request target in origin form starts
        # with "/" (a header value could start with "http", so absolute-form targets count as headers).
        return 414 if bytes(line[:1]) == b"/" else 431
    return 400


_original_handle_error = RequestHandler.handle_error


def _json_handle_error(self, request, status=500, exc=None, message=None):
    if not isinstance(exc, (HttpProcessingError, BadHttpMessage)):
        return _original_handle_error(self, request, status, exc, message)
    code = protocol_error_status(exc)
    log.warning("refused a malformed HTTP request: %s %s", code, type(exc).__name__)
    response = error_response(code, _message(code))
    response.force_close()  # as aiohttp does: the rest of the connection's bytes cannot be trusted
    return response


def answer_protocol_errors_as_json() -> None:
    """Answer requests the HTTP parser refuses as JSON, logged in one line (idempotent, process-wide)."""
    RequestHandler.handle_error = _json_handle_error


def install(web_app: web.Application) -> None:
    """JSON errors on the worker's aiohttp application (before it starts)."""
    if json_errors not in web_app.middlewares:
        web_app.middlewares.append(json_errors)
    answer_protocol_errors_as_json()
