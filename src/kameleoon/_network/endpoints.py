"""The URLs of every endpoint, for the vendor's hosts, a bare ``network_domain`` or a base URL."""

from __future__ import annotations

import re

from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._wire.encoding import encode, query

__all__ = ["Endpoints"]

_CONFIG_HOST = "sdk-config.kameleoon.eu"
_TOKEN_HOST = "api.kameleoon.com"
_EVENTS_HOST = "events.kameleoon.com:8110"
_DATA_HOST = "data.kameleoon.io"
_EVENTS_PORT = 8110

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_PORT = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")


class Endpoints:
    """Builds request URLs.

    * ``network_domain=None``: the vendor's hosts (HTTPS);
    * a bare domain ``D``: ``sdk-config.D``, ``api.D``, ``data.D``, ``events.D:8110``;
    * a base URL with a scheme: every endpoint under it, with the vendor's paths.

    The configuration may move the Data API with ``dataApiDomain`` (vendor hosts: used as is;
    bare domain: its first label replaces ``data``; base URL: ignored, the base URL wins).
    A value that is not ``host[:port]`` is ignored.
    """

    def __init__(self, site_code: str, network_domain: str | None, environment: str | None) -> None:
        self.site_code = site_code
        self.environment = environment
        self._base: str | None = None
        self._domain: str | None = None
        if network_domain and "://" in network_domain:
            self._base = network_domain.rstrip("/")
        elif network_domain:
            self._domain = network_domain
        self._data = self._root("data", _DATA_HOST)

    def _root(self, label: str, default: str) -> str:
        if self._base:
            return self._base
        return f"https://{f'{label}.{self._domain}' if self._domain else default}"

    def set_data_api_domain(self, domain: str) -> bool:
        """Applies ``configuration.dataApiDomain`` (sticky for the client's life); ``False``
        when the value is ignored."""
        if self._base or _HOST_PORT.fullmatch(domain) is None:
            return False
        if self._domain:
            self._data = f"https://{domain.split('.', 1)[0].split(':', 1)[0]}.{self._domain}"
        else:
            self._data = f"https://{domain}"
        return True

    @property
    def data_api(self) -> str:
        """The current root of the Data API (tracking, remote data, visitor data)."""
        return self._data

    def configuration(self, ts: str | None = None) -> str:
        params = query((("environment", self.environment), ("ts", ts)))
        url = f"{self._root('sdk-config', _CONFIG_HOST)}/{encode(self.site_code)}"
        return f"{url}?{params}" if params else url

    def sse(self) -> str:
        root = self._root("events", _EVENTS_HOST)
        if self._domain:
            root = f"{root}:{_EVENTS_PORT}"
        return f"{root}/sse?{query((('siteCode', self.site_code),))}"

    def token(self) -> str:
        return f"{self._root('api', _TOKEN_HOST)}/oauth/token"

    def tracking(self) -> str:
        params = query(
            (
                ("sdkName", SDK_LANGUAGE),
                ("sdkVersion", SDK_VERSION),
                ("siteCode", self.site_code),
                ("bodyUa", "true"),
            )
        )
        return f"{self._data}/visit/events?{params}"

    def remote_data(self, key: str) -> str:
        return f"{self._data}/map/map?{query((('siteCode', self.site_code), ('key', key)))}"

    def visitor_data(self, params: list[tuple[str, object]]) -> str:
        return f"{self._data}/visit/visitor?{query([('siteCode', self.site_code), *params])}"
