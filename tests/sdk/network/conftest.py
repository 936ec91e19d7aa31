"""Fixtures of the network tests: a misbehaving server on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kameleoon
from kameleoon._network import async_transport
from kameleoon._network.transport import Urllib3Transport

from .fault_server import FaultServer

_sites = itertools.count(1)

# Short periods so every scenario plays out in a second or two (all through the public config).
FAST = {
    "tracking_interval_millisecond": 100,
    "default_timeout_millisecond": 1000,
}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    fake = FaultServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def transport() -> Iterator[Urllib3Transport]:
    """A sync transport of its own, closed after the test."""
    transport = Urllib3Transport()
    yield transport
    transport.close()


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[Callable[..., Any]]:
    """``make_client(**config)`` creates a client of a fresh site code pointed at ``server``
    (``wait=False`` skips ``wait_init``); every client is forgotten at teardown."""
    created: list[str] = []

    def make(*, wait: bool = True, base_url: str | None = None, **options: Any) -> Any:
        site = f"site{next(_sites)}"
        settings = {**FAST, **options}
        config = kameleoon.KameleoonClientConfig(
            "client-id", "client secret", network_domain=base_url or server.url, **settings
        )
        client = kameleoon.KameleoonClientFactory.create(site, config)
        created.append(site)
        if wait:
            client.wait_init()
        return client

    yield make
    for site in created:
        kameleoon.KameleoonClientFactory.forget(site)


@pytest.fixture(autouse=True)
def _aiohttp_enabled() -> Iterator[None]:
    yield
    async_transport.use_aiohttp(True)


@pytest.fixture
def log() -> logging.Logger:
    return logging.getLogger("kameleoon.tests")


def eventually(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Polls ``predicate`` until it is truthy or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)
