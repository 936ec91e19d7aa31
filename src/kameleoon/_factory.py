"""``KameleoonClientFactory``: one client per site code, process-wide."""

from __future__ import annotations

import os
import threading
from typing import ClassVar

from kameleoon._client import KameleoonClient
from kameleoon._config import DEFAULT_CONFIG_PATH, KameleoonClientConfig
from kameleoon.exceptions import SiteCodeIsEmpty

__all__ = ["KameleoonClientFactory"]


class KameleoonClientFactory:
    """Creates and caches clients: ``create`` returns the same client for the same site code."""

    _clients: ClassVar[dict[str, KameleoonClient]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @staticmethod
    def create(
        site_code: str, config: KameleoonClientConfig | None = None, config_path: str = DEFAULT_CONFIG_PATH
    ) -> KameleoonClient:
        """The client of ``site_code``, created on first use.

        Without ``config``, the configuration is read from the YAML file ``config_path``
        (:class:`ConfigFileNotFound` if it is missing). Raises :class:`SiteCodeIsEmpty` for an
        empty site code. A later call with the same site code returns the cached client and
        ignores its configuration arguments.
        """
        with KameleoonClientFactory._lock:
            client = KameleoonClientFactory._clients.get(site_code)
            if client is not None:
                return client
            if config is None:
                config = KameleoonClientConfig.read_from_yaml(config_path)
            if not site_code:
                raise SiteCodeIsEmpty("Provided site_code is empty")
            client = KameleoonClient(site_code, config)
            KameleoonClientFactory._clients[site_code] = client
            return client

    @staticmethod
    def forget(site_code: str) -> None:
        """Drops the cached client of ``site_code``: its pending tracking is sent (within the
        default timeout) and its background threads stop."""
        with KameleoonClientFactory._lock:
            client = KameleoonClientFactory._clients.pop(site_code, None)
        if client is not None:
            client._close()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock (creating a client) when it forked: that
    # thread does not exist in the child, which would wait for the lock forever.
    KameleoonClientFactory._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
