"""The public test kit ``kameleoon.testing``: clients without network, the mock transport and the
helpers around them."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from kameleoon import KameleoonClient, KameleoonClientConfig, KameleoonClientFactory
from kameleoon.data import Conversion
from kameleoon.exceptions import ConfigException
from kameleoon.testing import (
    MockTransport,
    Request,
    Response,
    client_transport,
    close_client,
    create_client,
    flush_tracking,
    update_configuration,
)

from ._support import document, entry, example_config, flag, rule

SIMPLE = document(flag("f", rules=[rule(1, experiment_id=5, entries=[entry("on", 50, 1.0)])]))


@pytest.fixture
def made() -> Any:
    """Clients made in a test, closed afterwards."""
    clients: list[KameleoonClient] = []
    yield clients
    for client in clients:
        close_client(client, timeout=1.0)


def keep(made: list[KameleoonClient], client: KameleoonClient) -> KameleoonClient:
    made.append(client)
    return client


@pytest.mark.parametrize("form", ["dict", "text", "path", "str-path"])
def test_create_client_from_every_form(made: list[KameleoonClient], tmp_path: Path, form: str) -> None:
    """A decoded document, JSON text, a Path or a path string all configure the client."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps(SIMPLE), encoding="utf-8")
    source: Any = {"dict": SIMPLE, "text": json.dumps(SIMPLE), "path": path, "str-path": str(path)}[form]
    client = keep(made, create_client(source))
    assert client.get_feature_variation_key("v", "f") == "on"
    assert client.wait_init() is True


@pytest.mark.parametrize(
    "bad", ["{not json", {"featureFlags": [{"rules": [{}]}]}, "/no/such/file.json", "[]"]
)
def test_create_client_rejects_invalid_configurations(bad: Any) -> None:
    """Invalid JSON, an invalid configuration or an unreadable path raise ConfigException,
    and leave no thread behind."""
    before = threading.active_count()
    with pytest.raises(ConfigException):
        create_client(bad)
    assert threading.active_count() == before


def test_close_client_sends_what_is_left_and_stops_the_thread() -> None:
    before = threading.active_count()
    client = create_client(
        SIMPLE, config=KameleoonClientConfig("id", "secret", tracking_interval_millisecond=1000)
    )
    assert threading.active_count() == before + 1
    client.track_conversion("v", 3)
    close_client(client)
    assert threading.active_count() == before
    assert [line["goalId"] for line in client_transport(client).tracked_lines()] == ["3"]


def test_created_clients_are_not_cached(made: list[KameleoonClient]) -> None:
    """Test-kit clients are independent of the factory cache and of each other."""
    first = keep(made, create_client(SIMPLE, site_code="kit"))
    second = keep(made, create_client(SIMPLE, site_code="kit"))
    assert first is not second
    assert "kit" not in KameleoonClientFactory._clients


def test_settings_are_carried_over(made: list[KameleoonClient]) -> None:
    """The given configuration's settings apply; the client is offline."""
    settings = KameleoonClientConfig(
        "cid", "secret", session_duration_minute=5, environment="staging", top_level_domain="example.com"
    )
    client = keep(made, create_client(SIMPLE, config=settings, site_code="s1"))
    assert client._settings.offline is True
    assert client._settings.environment == "staging"
    assert client._settings.top_level_domain == "example.com"
    assert client._settings.session_duration_second == 300
    assert client._settings.client_id == "cid"
    assert client._site_code == "s1"


def test_default_transport_records_and_accepts(made: list[KameleoonClient]) -> None:
    """The default MockTransport answers 204 and records the tracking requests."""
    client = keep(made, create_client(SIMPLE))
    client.get_feature_variation_key("v", "f")
    assert flush_tracking(client) is True
    transport = client_transport(client)
    [request] = [r for r in transport.requests if "/visit/events" in r.url]
    assert request.method == "POST"
    assert "/visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode=test-site&bodyUa=true" in request.url
    assert transport.tracked_lines() == [
        {
            "nonce": transport.tracked_lines()[0]["nonce"],
            "eventType": "experiment",
            "id": "5",
            "variationId": "50",
            "visitorCode": "v",
        }
    ]


def test_tracked_lines_are_decoded(made: list[KameleoonClient]) -> None:
    """``tracked_lines`` percent-decodes names and values."""
    client = keep(made, create_client(SIMPLE))
    client.track_conversion("a b/é", 3, 1.5)
    flush_tracking(client)
    [line] = client_transport(client).tracked_lines()
    assert line["visitorCode"] == "a b/é"
    assert (line["goalId"], line["revenue"], line["negative"]) == ("3", "1.5", "false")


def test_custom_handler_and_transport(made: list[KameleoonClient]) -> None:
    """A transport with a handler answers every request with it."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, {"content-type": "application/json"}, b'{"k": 1}')

    transport = MockTransport(handler)
    client = keep(made, create_client(SIMPLE, transport=transport))
    assert client_transport(client) is transport
    assert client.get_remote_data("key") == {"k": 1}
    assert any(r.method == "GET" and "/map/map?siteCode=test-site&key=key" in r.url for r in seen)


def test_mock_transport_stream_and_close() -> None:
    """Streams (server-sent events) answer 404 with no data and are recorded."""
    transport = MockTransport()
    stream = transport.open_stream(Request("GET", "http://x/sse"), None)
    assert stream.status == 404
    assert stream.read() == b""
    stream.close()
    assert [r.url for r in transport.requests] == ["http://x/sse"]
    transport.close()
    assert transport.send(Request("GET", "http://x")).status == 204


def test_client_transport_refuses_other_clients(tmp_path: Path, made: list[KameleoonClient]) -> None:
    """``client_transport`` raises TypeError for a client not made by the test kit."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps(SIMPLE), encoding="utf-8")
    client = keep(
        made, KameleoonClient("s", KameleoonClientConfig("a", "b", offline=True, configuration_path=path))
    )
    with pytest.raises(TypeError):
        client_transport(client)


def test_flush_tracking_sends_everything_scheduled(made: list[KameleoonClient]) -> None:
    """``flush_tracking`` returns once the scheduled data reached the transport."""
    client = keep(made, create_client(SIMPLE))
    client.add_data("v", Conversion(1))
    client.flush("v")
    assert flush_tracking(client, timeout=5.0) is True
    assert [line["eventType"] for line in client_transport(client).tracked_lines()] == ["conversion"]
    assert flush_tracking(client) is True  # nothing left: still True


def test_update_configuration(made: list[KameleoonClient]) -> None:
    """``update_configuration`` installs a new document; an invalid one raises and keeps the old."""
    client = keep(made, create_client(SIMPLE))
    update_configuration(client, example_config())
    assert client.get_feature_list() == ["new_checkout", "pricing_banner", "recommendations"]
    with pytest.raises(ConfigException):
        update_configuration(client, {"featureFlags": None, "customData": [{"index": "x"}]})
    assert client.get_feature_list() == ["new_checkout", "pricing_banner", "recommendations"]
    update_configuration(client, json.dumps(SIMPLE))
    assert client.get_feature_list() == ["f"]
