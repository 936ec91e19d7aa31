"""Feature flags and A/B tests speaking the Kameleoon protocol.

A drop-in implementation of the documented API of the Kameleoon Python SDK 3.4.0::

    from kameleoon import KameleoonClientConfig, KameleoonClientFactory

    config = KameleoonClientConfig("client-id", "client-secret")
    client = KameleoonClientFactory.create("site-code", config)
    client.wait_init()
    variation = client.get_feature_variation_key(visitor_code, "my_flag")
"""

from kameleoon._client import KameleoonClient
from kameleoon._config import KameleoonClientConfig
from kameleoon._factory import KameleoonClientFactory
from kameleoon._version import __version__
from kameleoon.data import (
    Browser,
    BrowserType,
    Conversion,
    Cookie,
    CustomData,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
    UniqueIdentifier,
    UserAgent,
)
from kameleoon.integrations.wsgi import KameleoonWSGIMiddleware
from kameleoon.types import RemoteVisitorDataFilter, Variable, Variation

__all__ = [
    "Browser",
    "BrowserType",
    "Conversion",
    "Cookie",
    "CustomData",
    "Device",
    "DeviceType",
    "Geolocation",
    "KameleoonClient",
    "KameleoonClientConfig",
    "KameleoonClientFactory",
    "KameleoonWSGIMiddleware",
    "OperatingSystem",
    "OperatingSystemType",
    "PageView",
    "RemoteVisitorDataFilter",
    "UniqueIdentifier",
    "UserAgent",
    "Variable",
    "Variation",
    "__version__",
]
