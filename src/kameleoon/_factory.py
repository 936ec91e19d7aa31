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
        (:class:`ConfigFileNotFound` if it is missing; ``None`` means the default path). Raises
        :class:`SiteCodeIsEmpty` for an empty site code, and ``TypeError`` for a site code that
        is not a string or a ``config`` that is not a :class:`KameleoonClientConfig`. A later
        call with the same site code returns the cached client and ignores its configuration
        arguments.
        """
        given: tuple[object, object] = (site_code, config)  # the annotations are not enforced
        if given[0] is not None and not isinstance(given[0], str):
            raise TypeError(f"site_code must be a str, not {type(site_code).__name__}")
        if given[1] is not None and not isinstance(given[1], KameleoonClientConfig):
            raise TypeError(f"config must be a KameleoonClientConfig, not {type(config).__name__}")
        with KameleoonClientFactory._lock:
            client = KameleoonClientFactory._clients.get(site_code)
            if client is not None:
                return client
            if config is None:
                config = KameleoonClientConfig.read_from_yaml(config_path or DEFAULT_CONFIG_PATH)
            if not site_code:
                raise SiteCodeIsEmpty("Provided site_code is empty")
            client = KameleoonClient(site_code, config)
            KameleoonClientFactory._clients[site_code] = client
            return client

    @staticmethod
    def forget(site_code: str) -> None:
        """Drops the cached client of ``site_code``: its pending tracking is sent and its
        background threads stop, all within 5 seconds (what could not be sent by then is
        counted and logged). Later calls on the dropped client are not tracked (logged once)."""
        given: object = site_code  # checked at run time: the annotation is not enforced
        if not isinstance(given, str):
            return  # no client can have this site code
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
