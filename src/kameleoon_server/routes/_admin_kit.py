"""The small framework behind the admin API: an endpoint table (also used for the OpenAPI
document), admin-token auth, body decoding with clear 4xx errors, and optimistic model edits."""

from __future__ import annotations

import asyncio
import copy
import hmac
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kameleoon_server._integers import MAX_ID, parse_int
from kameleoon_server._validate import model_errors
from kameleoon_server.model import SiteModel, decode_model, encode_model
from kameleoon_server.routes._common import BodyTooLarge, error, json_response, read_body
from kameleoon_server.state import ServerState, now_ms, server
from kameleoon_server.storage import AlreadyExists, Conflict, NotFound, SiteRecord

T = TypeVar("T")
EDIT_ATTEMPTS: Final = 10


class ApiError(Exception):
    def __init__(self, status: int, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


def invalid(errors: list[str]) -> None:
    """Raises a 422 listing ``errors`` when there are any."""
    if errors:
        raise ApiError(422, "validation failed", errors)


@dataclass(slots=True)
class Call:
    request: Request
    state: ServerState
    body: Any

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def int_param(self, name: str) -> int:
        """A path id or index; nothing outside 0..MAX_ID exists, hence 404."""
        value = parse_int(self.param(name), 0, MAX_ID)
        if value is None:
            raise ApiError(404, f"{name} must be an integer from 0 to {MAX_ID}")
        return value

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def int_query(self, name: str, default: int, lowest: int, highest: int) -> int:
        """An integer query parameter (``default`` when absent or empty); 422 when it is not one."""
        text = self.query(name)
        if not text:
            return default
        value = parse_int(text, lowest, highest)
        if value is None:
            raise ApiError(422, f"query parameter {name} must be an integer from {lowest} to {highest}")
        return value


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    body: Any = None  # type the JSON body is decoded into ("raw" = any JSON value, None = no body)
    status: int = 200
    tag: str = "sites"
    public: bool = False
    parameters: tuple[dict[str, Any], ...] = ()  # OpenAPI query parameter objects
    response: Any = None  # type of the JSON answer, for the OpenAPI document


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    summary: str,
    *,
    body: Any = None,
    status: int = 200,
    tag: str = "sites",
    public: bool = False,
    parameters: tuple[dict[str, Any], ...] = (),
    response: Any = None,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(method, path, summary, handler, body, status, tag, public, parameters, response)
        )
        return handler

    return register


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    return header[:7].lower() == "bearer " and hmac.compare_digest(
        header[7:].strip().encode(), token.encode()
    )


async def _decode(request: Request, body_type: Any, limit: int) -> Any:
    raw = await read_body(request, limit)
    if body_type is dict:  # PATCH bodies: an object merged into the current value
        body_type = dict[str, Any]
    try:
        if body_type == "raw":
            return msgspec.json.decode(raw)
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "body is not valid UTF-8") from None
    except RecursionError:
        raise ApiError(400, "body is nested too deeply") from None


def _wrap(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        state = server(request)
        if not ep.public and not _authorized(request, state.settings.admin_token):
            return error(401, "admin token required (Authorization: Bearer <admin token>)")
        try:
            body = (
                None
                if ep.body is None
                else await _decode(request, ep.body, state.settings.max_admin_body_bytes)
            )
            result = await ep.handler(Call(request, state, body))
        except ApiError as exc:
            return (
                error(exc.status, exc.message, details=exc.details)
                if exc.details
                else error(exc.status, exc.message)
            )
        except BodyTooLarge:
            return error(413, f"body larger than {state.settings.max_admin_body_bytes} bytes")
        except NotFound as exc:
            return error(404, str(exc))
        except AlreadyExists as exc:
            return error(409, str(exc))
        if isinstance(result, Response):
            return result
        return json_response(result, ep.status) if ep.status != 204 else Response(status_code=204)

    return handle


def build_routes() -> list[Route]:
    return [Route(ep.path, _wrap(ep), methods=[ep.method]) for ep in ENDPOINTS]


# -- model access -----------------------------------------------------------------------------


async def load(call: Call) -> tuple[SiteRecord, SiteModel]:
    code = call.param("site")
    record = await call.state.storage.get_site(code)
    if record is None:
        raise ApiError(404, f"unknown site {code!r}")
    return record, decode_model(record.model)


async def _backoff(attempt: int) -> None:
    """A randomized pause before retrying a lost race: 1-2 ms, doubling up to 100-200 ms, so that
    writers that collided do not collide again."""
    ceiling = min(0.002 * 2**attempt, 0.2)
    await asyncio.sleep(random.uniform(ceiling / 2, ceiling))


def _adopt(model: SiteModel) -> None:
    """Gives ids to custom data imported without one (the vendor's configurations have none;
    earlier versions stored them with id 0)."""
    model.move_next_id_past_ids()
    for definition in model.custom_data:
        definition.id = definition.id or model.allocate_id()


_EDIT_LOCKS: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = weakref.WeakValueDictionary()


def _edit_lock(code: str) -> asyncio.Lock:
    """One lock per site and event loop: the edits a process makes to a site take turns, so only
    edits from other processes or instances can race (and are retried)."""
    key = (id(asyncio.get_running_loop()), code)
    lock = _EDIT_LOCKS.get(key)
    if lock is None:
        lock = _EDIT_LOCKS[key] = asyncio.Lock()
    return lock


async def edit(call: Call, change: Callable[[SiteModel], T]) -> T:
    """Applies ``change`` to the site's model and saves it; retried if another edit won the race.

    ``change`` must read ``call.body`` itself (it is restored before each attempt). The model is
    validated as a whole before it is saved (``model_errors``), and ``next_id`` moves past any id
    the change brought. The save bumps the configuration timestamp and notifies SSE subscribers
    (through storage).
    """
    async with _edit_lock(call.param("site")):
        pristine = copy.deepcopy(call.body)
        for attempt in range(EDIT_ATTEMPTS):
            if attempt:
                await _backoff(attempt - 1)
                call.body = copy.deepcopy(pristine)  # ``change`` may have filled in ids: start afresh
            saved, result = await _attempt(call, change)
            if saved:
                return result
    raise ApiError(409, "the site is being changed concurrently; retry")


async def _attempt(call: Call, change: Callable[[SiteModel], T]) -> tuple[bool, T]:
    """One load-change-validate-save round; False when another edit saved the site meanwhile."""
    record, model = await load(call)
    _adopt(model)
    result = change(model)
    model.move_next_id_past_ids()
    invalid(model_errors(model))
    try:
        await call.state.storage.update_site(record.code, record.version, encode_model(model), now_ms())
    except Conflict:
        return False, result
    return True, result


def merge(current: Any, patch: dict[str, Any], kind: type[T], fixed: tuple[str, ...] = ()) -> T:
    """``current`` updated with the fields of ``patch`` (validated as ``kind``)."""
    if not isinstance(patch, dict):
        raise ApiError(422, f"invalid body: expected an object of {kind.__name__} fields")
    for name in fixed:
        if name in patch and patch[name] != getattr(current, name):
            raise ApiError(422, f"{name} cannot be changed")
    merged = msgspec.to_builtins(current) | patch
    try:
        return msgspec.convert(merged, kind)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"invalid body: {exc}") from None


def find(items: list[T], predicate: Callable[[T], bool], what: str) -> T:
    for item in items:
        if predicate(item):
            return item
    raise ApiError(404, f"{what} not found")


def to_json(value: Any) -> Any:
    return msgspec.to_builtins(value)
