"""Remote data: ``/map/map`` (data by key, warehouse audiences) and ``/visit/visitor``.

Requests are built and responses interpreted here once; the sync methods send on the
caller's thread through the client's transport, the async twins through aiohttp when the
``[async]`` extra is installed (otherwise the sync call runs on one of the SDK's worker threads,
:mod:`kameleoon._network.workers`, with what remains of the call's timeout: time spent waiting
for a worker counts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kameleoon import _cookies
from kameleoon._config import MAX_SECONDS
from kameleoon._engine.model import UNKNOWN_RULE
from kameleoon._network.transport import Request, Response, TransportError, Urllib3Transport, is_expected
from kameleoon._visitors.data import (
    DataContext,
    add_conversion,
    add_items,
    add_page,
    count_drops,
    store_custom_data,
)
from kameleoon._wire.visitor_data import RemoteVisit, parse_visitor_data
from kameleoon.data import Conversion, CustomData
from kameleoon.types import RemoteVisitorDataFilter

if TYPE_CHECKING:
    from kameleoon._client import KameleoonClient

__all__ = ["RemoteData"]

T = TypeVar("T")


class RemoteData:
    def __init__(self, client: KameleoonClient) -> None:
        self._client = client

    # -- request building -------------------------------------------------------------------
    def _timeout(self, timeout: float | None) -> float:
        """The call's timeout in seconds: ``timeout`` when it is a positive number (at most
        a year), else the default (with a warning when something else was given)."""
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            return float(min(timeout, MAX_SECONDS))  # NaN fails the test above
        if timeout is not None:
            self._client._log.warning(
                "timeout=%r is not a positive number of seconds: using the default", timeout
            )
        return self._client._settings.default_timeout_second

    def _map_request(self, key: str, timeout: float | None) -> Request:
        return Request("GET", self._client._endpoints.remote_data(key), {}, None, self._timeout(timeout))

    def _visitor_request(
        self, code: str | None, data_filter: RemoteVisitorDataFilter, unique: bool, timeout: float | None
    ) -> Request:
        f = data_filter
        params: list[tuple[str, object]] = [
            ("mappingValue" if unique else "visitorCode", code),
            ("maxNumberPreviousVisits", f.previous_visit_amount),
            ("version", 0),
        ]
        flags = (
            ("kcs", f.kcs),
            ("currentVisit", f.current_visit),
            ("customData", f.custom_data),
            ("conversion", f.conversions),
            ("geolocation", f.geolocation),
            ("experiment", f.experiments),
            ("page", f.page_views),
            ("staticData", f.device or f.browser or f.operating_system),
        )
        params += [(name, "true") for name, wanted in flags if wanted]
        url = self._client._endpoints.visitor_data(params)
        return Request("GET", url, {}, None, self._timeout(timeout))

    # -- sending ------------------------------------------------------------------------------
    # One attempt with the access token, and after a 401 one more without it (spec §1.3). The
    # token request counts against the call's own timeout: the whole call never takes longer.
    def _send(self, request: Request) -> Response | None:
        client = self._client
        deadline = time.monotonic() + request.timeout
        try:
            token = client._tokens.get(request.timeout)
            response = client._transport.send(request.with_token(token).with_timeout(_left(deadline)))
            if response.status == 401 and token is not None:
                client._tokens.invalidate(token)
                response = client._transport.send(request.with_timeout(_left(deadline)))
        except TransportError as e:
            client._log.error("%s failed: %s", request.url, e)
            return None
        return response

    def _aiohttp(self) -> bool:
        """Whether the async twins go through aiohttp: only when it is installed and the client
        sends through the network transport itself (an offline client, or one given a test
        double such as :class:`kameleoon.testing.MockTransport`, keeps its own transport)."""
        from kameleoon._network import async_transport

        return isinstance(self._client._transport, Urllib3Transport) and async_transport.available()

    async def _send_async(self, request: Request, started: float) -> Response | None:
        """Like :meth:`_send`, on the running loop; the call's deadline counts from
        ``started`` (a :func:`time.monotonic` instant taken when the call began)."""
        from kameleoon._network import async_transport

        client = self._client
        deadline = started + request.timeout
        try:
            token = await self._token_async(deadline)
            response = await async_transport.send(request.with_token(token).with_timeout(_left(deadline)))
            if response.status == 401 and token is not None:
                client._tokens.invalidate(token)
                response = await async_transport.send(request.with_timeout(_left(deadline)))
        except TransportError as e:
            client._log.error("%s failed: %s", request.url, e)
            return None
        return response

    async def _token_async(self, deadline: float) -> str | None:
        """The cached token, else one requested on a worker thread (blocking I/O: off the
        event loop) within the call's deadline."""
        from kameleoon._network import workers

        tokens = self._client._tokens
        token = tokens.cached()
        if token is None:
            token = await workers.call_within(deadline, tokens.get)
        return token

    async def _in_thread(self, name: str, timeout: float | None, call: Callable[[float], T], failed: T) -> T:
        """Without aiohttp: ``call(seconds_left)`` (the sync twin) on a worker thread, its
        deadline counted from now; ``failed`` (what the twin returns on a timeout) when the
        deadline passes first."""
        from kameleoon._network import workers

        deadline = time.monotonic() + self._timeout(timeout)
        try:
            return await workers.call_within(deadline, call)
        except workers.Expired as e:
            self._client._log.error("%s failed: %s", name, e)
            return failed

    # -- public operations ------------------------------------------------------------------
    def get_remote_data(self, key: str, timeout: float | None) -> Any:
        return self._json(self._send(self._map_request(key, timeout)))

    async def get_remote_data_async(self, key: str, timeout: float | None) -> Any:
        started = time.monotonic()
        if not self._aiohttp():
            return await self._in_thread(
                "get_remote_data", timeout, lambda left: self.get_remote_data(key, left), None
            )
        return self._json(await self._send_async(self._map_request(key, timeout), started))

    def get_remote_visitor_data(
        self, code: str, add_data: bool, timeout: float | None, data_filter: Any, unique: bool | None
    ) -> list[Any]:
        request = self._prepare_visitor(code, data_filter, unique, timeout)
        return self._visitor_result(code, self._send(request), add_data)

    async def get_remote_visitor_data_async(
        self, code: str, add_data: bool, timeout: float | None, data_filter: Any, unique: bool | None
    ) -> list[Any]:
        started = time.monotonic()
        if not self._aiohttp():
            self._identifier_step(code, unique)  # local, at once: not lost if the call times out

            def call(left: float) -> list[Any]:
                return self.get_remote_visitor_data(code, add_data, left, data_filter, None)

            return await self._in_thread("get_remote_visitor_data", timeout, call, [])
        request = self._prepare_visitor(code, data_filter, unique, timeout)
        return self._visitor_result(code, await self._send_async(request, started), add_data)

    def get_visitor_warehouse_audience(
        self, code: str, index: int, warehouse_key: str | None, timeout: float | None
    ) -> CustomData | None:
        valid = _cookies.validate_visitor_code(code)
        response = self._send(self._map_request(warehouse_key or valid, timeout))
        return self._audience(valid, index, response)

    async def get_visitor_warehouse_audience_async(
        self, code: str, index: int, warehouse_key: str | None, timeout: float | None
    ) -> CustomData | None:
        started = time.monotonic()
        valid = _cookies.validate_visitor_code(code)  # raises at once, whatever the path
        if not self._aiohttp():
            return await self._in_thread(
                "get_visitor_warehouse_audience",
                timeout,
                lambda left: self.get_visitor_warehouse_audience(valid, index, warehouse_key, left),
                None,
            )
        response = await self._send_async(self._map_request(warehouse_key or valid, timeout), started)
        return self._audience(valid, index, response)

    # -- interpretation -----------------------------------------------------------------------
    def _json(self, response: Response | None) -> Any:
        if response is None:
            return None
        try:
            return response.json()
        except TransportError as e:
            self._client._log.error("remote data: %s", e)
            return None

    def _prepare_visitor(
        self, code: str, data_filter: Any, unique: bool | None, timeout: float | None
    ) -> Request:
        client = self._client
        self._identifier_step(code, unique)
        is_unique = isinstance(code, str) and client._store.is_unique_identifier(code)
        f = data_filter if isinstance(data_filter, RemoteVisitorDataFilter) else RemoteVisitorDataFilter()
        text = None if code is None else str(code)  # None: no visitorCode parameter (spec §1.4)
        return self._visitor_request(text, f, is_unique, timeout)

    def _identifier_step(self, code: str, unique: bool | None) -> None:
        if unique is not None and isinstance(code, str):  # the code is not validated here
            self._client._unique_identifier_step(code, unique)

    def _visitor_result(self, code: str, response: Response | None, add_data: bool) -> list[Any]:
        document = self._json(response)
        if document is None:
            return []
        remote = parse_visitor_data(document)
        if add_data and isinstance(code, str) and code:
            self._store_remote(code, remote)
        return remote.returned()

    def _store_remote(self, code: str, remote: RemoteVisit) -> None:
        client = self._client
        store, config = client._store, client._cfg
        visitor = store.get_or_create(code)
        with store.data_lock:
            dropped = 0
            for item in remote.custom_data:
                if visitor.custom_values(item.id) is None:
                    definition = config.custom_data.get(item.id)
                    resend = definition is not None and definition.visitor_scope and bool(item.values)
                    dropped += not store_custom_data(visitor, item.id, tuple(item.values), unsent=resend)
            dropped += sum(_merge_page(visitor, e.page, e.count, e.last_seen_ms) for e in remote.pages)
            if remote.device is not None and visitor.device is None:
                visitor.device = remote.device.device_type
            if remote.browser is not None and visitor.browser is None:
                visitor.browser, visitor.browser_version = remote.browser.browser_type, remote.browser.version
            if remote.operating_system is not None and visitor.os is None:
                visitor.os = remote.operating_system.os_type
            if remote.geolocation is not None and visitor.geo is None:
                visitor.geo = remote.geolocation
            dropped += sum(not add_conversion(visitor, _copy(c), unsent=False) for c in remote.conversions)
            count_drops(store, dropped)
            for experiment_id, variation_id, time_ms in remote.experiments:
                assigned = visitor.assigned if visitor.assigned is not None else {}
                if experiment_id not in assigned:
                    # an event without a time is shown by the tracking code for good (§8.3)
                    at = time_ms / 1000 if isinstance(time_ms, (int, float)) else math.inf
                    assigned[experiment_id] = (variation_id, UNKNOWN_RULE, at, len(assigned), -1, None)
                    visitor.assigned = assigned
            if remote.visits is not None:
                visitor.extras().visits = remote.visits
            if remote.kcs is not None:
                visitor.extras().kcs = remote.kcs
        store.settle(code, visitor)

    def _audience(self, code: str, index: int, response: Response | None) -> CustomData | None:
        if response is None or not is_expected(response.status):
            return None
        document = self._json(response)
        if not isinstance(document, dict):
            return None
        audiences = document.get("warehouseAudiences")
        data = CustomData(index, *(audiences if isinstance(audiences, dict) else ()))
        client = self._client
        store = client._store
        visitor = store.get_or_create(code)
        with store.data_lock:
            add_items(DataContext(store, code, visitor, client._cfg, client._log), (data,))
        store.settle(code, visitor)
        return data


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransportError("the call's timeout expired")
    return left


def _merge_page(visitor: Any, page: Any, count: int, seen_ms: Any) -> int:
    """Merges a page entry of the visitor's history; returns how many entries its bound dropped."""
    pages = visitor.pages or []
    for position in range(0, len(pages), 3):
        if pages[position].url == page.url:
            pages[position + 1] += count
            if isinstance(seen_ms, (int, float)) and seen_ms > pages[position + 2]:
                pages[position + 2] = seen_ms
            return 0
    seen = float(seen_ms) if isinstance(seen_ms, (int, float)) else 0.0
    return add_page(visitor, page, count, seen, unsent=False)


def _copy(conversion: Conversion) -> Conversion:
    return Conversion(conversion.goal_id, conversion.revenue, conversion.negative)
