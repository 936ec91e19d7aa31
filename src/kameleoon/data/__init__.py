"""Visitor data that can be attached to a visitor with :meth:`KameleoonClient.add_data`.

Each type is a small value object. ``add_data`` dispatches on the exact type: instances of
subclasses, and objects of any other type, are ignored with a warning.
"""

from kameleoon.data._types import (
    Browser,
    BrowserType,
    Conversion,
    Cookie,
    CustomData,
    Data,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
    UniqueIdentifier,
    UserAgent,
)

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
