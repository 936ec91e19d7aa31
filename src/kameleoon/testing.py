"""Test doubles for your own tests (and ours): clients that decide without any network.

::

    from kameleoon.testing import client_transport, create_client, flush_tracking

    client = create_client({"featureFlags": [...]})          # a dict, JSON text or a path
    assert client.get_feature_variation_key("visitor-1", "new_checkout") == "on"
    flush_tracking(client)
    assert client_transport(client).tracked_lines()[0]["eventType"] == "experiment"

Everything here uses the real client and the real engine; only the network is replaced by a
:class:`MockTransport`, which records every request and answers with your handler.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from kameleoon._client import KameleoonClient
from kameleoon._config import KameleoonClientConfig
from kameleoon._engine.parse import ConfigError, parse_configuration, parse_configuration_text
from kameleoon._network.transport import ClosedStream, Request, Response
from kameleoon.exceptions import ConfigException

__all__ = [
    "MockTransport",
    "Request",
    "Response",
    "client_transport",
    "close_client",
    "create_client",
    "flush_tracking",
    "update_configuration",
]

Handler = Callable[[Request], Response]


_TOKEN = b'{"access_token": "test-token", "expires_in": 86400, "token_type": "Bearer"}'


def _no_content(request: Request) -> Response:
    if request.url.endswith("/oauth/token"):
        return Response(200, {"content-type": "application/json"}, _TOKEN)
    return Response(204, {}, b"")


class MockTransport:
    """A transport that records every request and answers ``handler(request)``.

    The default handler answers a token to token requests and an empty 204 to everything else
    (tracking accepted, remote data absent). Thread-safe.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or _no_content
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def send(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        return self.handler(request)

    def open_stream(self, request: Request, idle_timeout: float | None) -> ClosedStream:
        with self._lock:
            self.requests.append(request)
        return ClosedStream(404)

    def close(self) -> None:
        pass

    def tracked_lines(self) -> list[dict[str, str]]:
        """Every tracking line sent so far, as decoded parameters (in sending order)."""
        with self._lock:
            bodies = [r.body for r in self.requests if r.method == "POST" and "/visit/events" in r.url]
        return [_parse_line(line) for body in bodies if body for line in body.decode("utf-8").split("\n")]


def _parse_line(line: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in line.split("&"):
        name, _, value = part.partition("=")
        params[unquote(name)] = unquote(value)
    return params


def _document(configuration: Mapping[str, Any] | str | os.PathLike[str]) -> Any:
    if isinstance(configuration, Mapping):
        return configuration
    text = os.fspath(configuration)
    if isinstance(configuration, str) and text.lstrip().startswith("{"):
        return json.loads(text)
    with open(text, encoding="utf-8") as f:
        return json.load(f)


def create_client(
    configuration: Mapping[str, Any] | str | os.PathLike[str],
    *,
    site_code: str = "test-site",
    config: KameleoonClientConfig | None = None,
    transport: MockTransport | None = None,
) -> KameleoonClient:
    """A client deciding from ``configuration`` (a decoded document, JSON text, or the path of a
    JSON file) with no network: nothing is downloaded, and tracking goes to ``transport``
    (a new :class:`MockTransport` by default, see :func:`client_transport`).

    The client is independent of :class:`KameleoonClientFactory` (not cached). Raises
    :class:`ConfigException` when the document is not a valid configuration.
    """
    settings = config or KameleoonClientConfig("test-client-id", "test-client-secret")
    offline = KameleoonClientConfig(
        settings.client_id,
        settings.client_secret,
        settings.refresh_interval_second / 60,
        settings.session_duration_second / 60,
        settings.default_timeout_second * 1000,
        round(settings.tracking_interval_second * 1000),
        settings.environment,
        settings.top_level_domain,
        logger=settings.logger,
        network_domain=settings.network_domain,
        max_visitors=settings.max_visitors,
        offline=True,
    )
    client = KameleoonClient(site_code, offline, _transport=transport or MockTransport())
    try:
        update_configuration(client, configuration)
    except BaseException:
        client._close(0)  # its tracking thread would be left running
        raise
    return client


def close_client(client: KameleoonClient, timeout: float = 5.0) -> None:
    """Stops the client's background thread after sending what it has to its transport (within
    ``timeout`` seconds). Each client of :func:`create_client` runs a daemon thread until it is
    closed: close the ones a long test run makes, or use a fixture that does."""
    client._close(timeout)


def update_configuration(
    client: KameleoonClient, configuration: Mapping[str, Any] | str | os.PathLike[str]
) -> None:
    """Installs a new configuration in ``client`` as a download would (the handler registered
    with ``on_update_configuration`` runs). Raises :class:`ConfigException` for an invalid one."""
    try:
        document = _document(configuration)
        parsed = (
            parse_configuration_text(document)
            if isinstance(document, (str, bytes))
            else parse_configuration(document)
        )
    except (ConfigError, ValueError, OSError) as e:
        raise ConfigException(f"invalid configuration: {e}") from e
    client._install(parsed, None)


def client_transport(client: KameleoonClient) -> MockTransport:
    """The :class:`MockTransport` of a client made by :func:`create_client`."""
    transport = client._transport
    if not isinstance(transport, MockTransport):
        raise TypeError("this client was not made by kameleoon.testing.create_client")
    return transport


def flush_tracking(client: KameleoonClient, timeout: float = 5.0) -> bool:
    """Sends everything scheduled now and waits until it was handed to the transport."""
    return client._tracker.wait_idle(timeout)
