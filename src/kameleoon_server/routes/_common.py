"""Helpers shared by the route modules: JSON answers, body limits, Data API site and auth checks."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kameleoon_server._integers import parse_int
from kameleoon_server._wire import bearer_token
from kameleoon_server.sites import SiteState
from kameleoon_server.state import ServerState, server

_encoder = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    if status == 401 and headers is None:
        headers = {"WWW-Authenticate": 'Bearer realm="kameleoon"'}
    return json_response({"error": message, **extra}, status, headers)


def read_error(status: int, message: str) -> Response:
    """An error answer of the Data API's read endpoints (``/map/map``, ``/visit/visitor``): plain
    text, not JSON. The SDKs decode a JSON answer whatever its status (protocol §6, §8.2) and
    would hand a JSON error to the application as if it were the data; a body that is not JSON
    makes them return ``None``."""
    headers = {"WWW-Authenticate": 'Bearer realm="kameleoon"'} if status == 401 else None
    return Response(message, status, headers, media_type="text/plain")


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (parse_int(declared, 0) or 0) > limit:
        raise BodyTooLarge
    if declared is not None:
        body = await request.body()
        if len(body) > limit:
            raise BodyTooLarge
        return body
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> Response:
    return error(413, f"request body larger than {limit} bytes")


async def check_data_api(
    state: ServerState, code: str | None, authorization: str | None
) -> SiteState | tuple[int, str]:
    """The site named by ``siteCode`` if the request may use it, else (status, message).

    Auth policy: a Bearer token must be valid, unexpired and issued for this site (else 401);
    without a token the request is accepted only when the site's ``data_api_auth`` is
    ``optional``.
    """
    if not code:
        return 400, "siteCode is required"
    return _allowed(state, code, await state.sites.get(code), authorization)


def check_data_api_now(
    state: ServerState, code: str | None, authorization: str | None
) -> SiteState | tuple[int, str] | None:
    """:func:`check_data_api` from the site cache alone: None when only the database knows."""
    if not code:
        return 400, "siteCode is required"
    known, site = state.sites.cached(code)
    return _allowed(state, code, site, authorization) if known else None


def _allowed(
    state: ServerState, code: str, site: SiteState | None, authorization: str | None
) -> SiteState | tuple[int, str]:
    if site is None:
        state.counters.add("unknown_site")
        return 404, f"unknown site {code!r}"
    token = bearer_token(authorization)
    if token is not None:
        if state.tokens.verify(token) != site.id:
            state.counters.add("auth_rejected")
            return 401, "invalid or expired access token"
    elif site.auth_required:
        state.counters.add("auth_missing")
        return 401, "an access token is required (POST /oauth/token)"
    return site


async def data_api_site(request: Request) -> SiteState | Response:
    """:func:`check_data_api` for a Starlette request of a read endpoint (see :func:`read_error`)."""
    checked = await check_data_api(
        server(request), request.query_params.get("siteCode"), request.headers.get("authorization")
    )
    return read_error(*checked) if isinstance(checked, tuple) else checked
