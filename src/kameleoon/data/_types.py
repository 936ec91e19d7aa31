"""The visitor data value types (public through :mod:`kameleoon.data`)."""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = [
    "Browser",
    "BrowserType",
    "Conversion",
    "Cookie",
    "CustomData",
    "Data",
    "Device",
    "DeviceType",
    "Geolocation",
    "OperatingSystem",
    "OperatingSystemType",
    "PageView",
    "UniqueIdentifier",
    "UserAgent",
]


class BrowserType(IntEnum):
    """Browser families; the value is the ``browserIndex`` sent in tracking."""

    CHROME = 0
    INTERNET_EXPLORER = 1
    FIREFOX = 2
    SAFARI = 3
    OPERA = 4
    OTHER = 5


class DeviceType(Enum):
    """Device categories; the value is the ``deviceType`` sent in tracking."""

    PHONE = "PHONE"
    TABLET = "TABLET"
    DESKTOP = "DESKTOP"


class OperatingSystemType(IntEnum):
    """Operating systems; the value is the ``osIndex`` sent in tracking."""

    WINDOWS = 0
    MAC = 1
    IOS = 2
    LINUX = 3
    ANDROID = 4
    WINDOWS_PHONE = 5


class Data:
    """Base class of every visitor data type."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"


class CustomData(Data):
    """Values of one custom data slot (``id`` is the slot index defined in the configuration).

    A visitor keeps one ``CustomData`` per index; adding another with the same index replaces it.
    """

    __slots__ = ("id", "values")

    def __init__(self, id: int, *values: str) -> None:
        self.id = id
        self.values = values


class Browser(Data):
    """The visitor's browser and, optionally, its version (a number such as ``120.0``)."""

    __slots__ = ("browser_type", "version")

    def __init__(self, browser_type: BrowserType, version: float | None = None) -> None:
        self.browser_type = browser_type
        self.version = version


class Device(Data):
    """The visitor's device category."""

    __slots__ = ("device_type",)

    def __init__(self, device_type: DeviceType) -> None:
        self.device_type = device_type


class OperatingSystem(Data):
    """The visitor's operating system."""

    __slots__ = ("os_type",)

    def __init__(self, os_type: OperatingSystemType) -> None:
        self.os_type = os_type


class Geolocation(Data):
    """Where the visitor is; ``country`` is required, everything else optional."""

    __slots__ = ("country", "region", "city", "postal_code", "latitude", "longitude")

    def __init__(
        self,
        country: str,
        region: str | None = None,
        city: str | None = None,
        postal_code: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> None:
        self.country = country
        self.region = region
        self.city = city
        self.postal_code = postal_code
        self.latitude = latitude
        self.longitude = longitude


class Cookie(Data):
    """The visitor's browser cookies (name → value), used by COOKIE targeting only; never sent."""

    __slots__ = ("cookies",)

    def __init__(self, cookies: dict[str, str]) -> None:
        self.cookies = cookies


class UserAgent(Data):
    """The visitor's browser user agent, attached to tracking requests for bot filtering."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


class PageView(Data):
    """A page the visitor viewed; ``referrers`` are indices of acquisition channels."""

    __slots__ = ("url", "title", "referrers")

    def __init__(self, url: str, title: str | None, referrers: list[int] | None = None) -> None:
        self.url = url
        self.title = title
        self.referrers = referrers


class Conversion(Data):
    """A goal reached by the visitor, with an optional revenue; ``negative`` cancels revenue."""

    __slots__ = ("goal_id", "revenue", "negative")

    def __init__(self, goal_id: int, revenue: float = 0.0, negative: bool = False) -> None:
        self.goal_id = goal_id
        self.revenue = revenue
        self.negative = negative


class UniqueIdentifier(Data):
    """Marks the visitor code as a user identifier (cross-device reconciliation)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value
