"""The URLs of every endpoint, for the vendor's hosts, a bare ``network_domain`` or a base URL."""

from __future__ import annotations

from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION
from kameleoon._wire.encoding import encode, query

__all__ = ["Endpoints"]

_CONFIG_HOST = "sdk-config.kameleoon.eu"
_TOKEN_HOST = "api.kameleoon.com"
_EVENTS_HOST = "events.kameleoon.com:8110"
_DATA_HOST = "data.kameleoon.io"


class Endpoints:
    """Builds request URLs.

    * ``network_domain=None``: the vendor's hosts (HTTPS);
    * a bare domain ``D``: ``sdk-config.D``, ``api.D``, ``data.D``, ``events.D:8110``;
    * a base URL with a scheme: every endpoint under it, with the vendor's paths.

    The configuration may move the Data API with ``dataApiDomain`` (vendor hosts: used as is;
    bare domain: its first label replaces ``data``; base URL: ignored, the base URL wins).
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
        self._data = self._base or f"https://{self._host('data', _DATA_HOST)}"

    def _host(self, label: str, default: str) -> str:
        return f"{label}.{self._domain}" if self._domain else default

    def _root(self, label: str, default: str) -> str:
        return self._base or f"https://{self._host(label, default)}"

    def set_data_api_domain(self, domain: str) -> None:
        """Applies ``configuration.dataApiDomain`` (sticky for the client's life)."""
        if self._base:
            return
        if self._domain:
            self._data = f"https://{domain.split('.', 1)[0]}.{self._domain}"
        else:
            self._data = f"https://{domain}"

    def configuration(self, ts: int | None = None) -> str:
        params = query((("environment", self.environment), ("ts", ts)))
        url = f"{self._root('sdk-config', _CONFIG_HOST)}/{encode(self.site_code)}"
        return f"{url}?{params}" if params else url

    def sse(self) -> str:
        return f"{self._root('events', _EVENTS_HOST)}/sse?{query((('siteCode', self.site_code),))}"

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
