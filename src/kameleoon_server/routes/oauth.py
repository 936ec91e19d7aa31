"""``POST /oauth/token``: client-credentials grant (protocol.md §4, Appendix A.4)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kameleoon_server._wire import parse_token_request
from kameleoon_server.routes._common import BodyTooLarge, json_response, read_body
from kameleoon_server.state import server
from kameleoon_server.tokens import secret_matches

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_BODY = 16 * 1024


def _oauth_error(status: int, code: str, description: str) -> Response:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="kameleoon"'
    return json_response({"error": code, "error_description": description}, status, headers)


async def token(request: Request) -> Response:
    state = server(request)
    try:
        body = (await read_body(request, _MAX_BODY)).decode("utf-8")
        credentials = parse_token_request(body, request.headers.get("authorization"))
    except BodyTooLarge:
        return _oauth_error(413, "invalid_request", "request body too large")
    except (ValueError, UnicodeDecodeError) as exc:
        return _oauth_error(400, "invalid_request", str(exc))
    record = await state.storage.get_credential(credentials.client_id)
    if record is None or not secret_matches(credentials.client_secret, record.secret_hash):
        state.counters.add("token_rejected")
        return _oauth_error(401, "invalid_client", "unknown client id or wrong secret")
    access_token, expires_in = state.tokens.issue(record.site_id)
    state.counters.add("token_issued")
    body_out = {"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}
    return json_response(body_out, 200, _NO_STORE)


routes = [Route("/oauth/token", token, methods=["POST"])]
