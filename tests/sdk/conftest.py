"""Fixtures of the SDK tests: offline clients made by the public test kit, closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kameleoon import KameleoonClient, KameleoonClientConfig
from kameleoon.testing import MockTransport, create_client

from ._support import example_config

ClientFactory = Callable[..., KameleoonClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """``make_client(configuration=None, **config_kwargs)``: a test-kit client (closed at teardown)."""
    made: list[KameleoonClient] = []

    def factory(
        configuration: Any = None, *, transport: MockTransport | None = None, **settings: Any
    ) -> KameleoonClient:
        config = KameleoonClientConfig("id", "secret", **settings) if settings else None
        client = create_client(
            example_config() if configuration is None else configuration, config=config, transport=transport
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        client._close(timeout=1.0)


@pytest.fixture
def client(make_client: ClientFactory) -> KameleoonClient:
    """A client on the worked-example configuration (evaluation spec §1.12)."""
    return make_client()
