"""The visitor data value types of ``kameleoon.data`` (evaluation spec §4.2)."""

from __future__ import annotations

import inspect

import pytest

from kameleoon.data import (
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


def test_browser_type_values() -> None:
    """BrowserType members and their tracking indexes."""
    assert {m.name: m.value for m in BrowserType} == {
        "CHROME": 0,
        "INTERNET_EXPLORER": 1,
        "FIREFOX": 2,
        "SAFARI": 3,
        "OPERA": 4,
        "OTHER": 5,
    }


def test_operating_system_type_values() -> None:
    """OperatingSystemType members and their tracking indexes."""
    assert {m.name: m.value for m in OperatingSystemType} == {
        "WINDOWS": 0,
        "MAC": 1,
        "IOS": 2,
        "LINUX": 3,
        "ANDROID": 4,
        "WINDOWS_PHONE": 5,
    }


def test_device_type_members() -> None:
    """DeviceType has exactly PHONE, TABLET and DESKTOP, named after their tracking value."""
    assert [m.name for m in DeviceType] == ["PHONE", "TABLET", "DESKTOP"]
    assert all(m.value == m.name for m in DeviceType)


def test_custom_data_holds_id_and_values() -> None:
    """CustomData(id, *values): the values are a tuple in the given order."""
    data = CustomData(3, "a", "b", "a")
    assert data.id == 3
    assert data.values == ("a", "b", "a")
    assert CustomData(1).values == ()


def test_custom_data_keeps_the_id_type() -> None:
    """No conversion: a string id stays a string."""
    assert CustomData("1", "x").id == "1"


def test_browser_defaults() -> None:
    """Browser(browser_type, version=None)."""
    assert Browser(BrowserType.CHROME).version is None
    browser = Browser(BrowserType.SAFARI, 17.2)
    assert (browser.browser_type, browser.version) == (BrowserType.SAFARI, 17.2)


def test_geolocation_defaults() -> None:
    """Geolocation(country, region=None, city=None, postal_code=None, latitude=None, longitude=None)."""
    geo = Geolocation("France")
    assert (geo.country, geo.region, geo.city, geo.postal_code, geo.latitude, geo.longitude) == (
        "France",
        None,
        None,
        None,
        None,
        None,
    )
    full = Geolocation("France", "IDF", "Paris", "75001", 48.85, 2.35)
    assert (full.region, full.city, full.postal_code, full.latitude, full.longitude) == (
        "IDF",
        "Paris",
        "75001",
        48.85,
        2.35,
    )


def test_page_view_defaults() -> None:
    """PageView(url, title, referrers=None): the title is required."""
    page = PageView("https://x", None)
    assert (page.url, page.title, page.referrers) == ("https://x", None, None)
    with pytest.raises(TypeError):
        PageView("https://x")  # type: ignore[call-arg]
    assert PageView("u", "t", [1, 2]).referrers == [1, 2]


def test_conversion_defaults() -> None:
    """Conversion(goal_id, revenue=0.0, negative=False)."""
    conversion = Conversion(5)
    assert (conversion.goal_id, conversion.revenue, conversion.negative) == (5, 0.0, False)
    assert isinstance(conversion.revenue, float)
    assert Conversion(5, 10, True).negative is True


@pytest.mark.parametrize(
    ("item", "attributes"),
    [
        (Device(DeviceType.PHONE), {"device_type": DeviceType.PHONE}),
        (OperatingSystem(OperatingSystemType.IOS), {"os_type": OperatingSystemType.IOS}),
        (Cookie({"a": "1"}), {"cookies": {"a": "1"}}),
        (UserAgent("UA/1"), {"value": "UA/1"}),
        (UniqueIdentifier(True), {"value": True}),
    ],
)
def test_single_value_types(item: Data, attributes: dict[str, object]) -> None:
    """The one-field types keep their argument under the documented attribute name."""
    for name, value in attributes.items():
        assert getattr(item, name) == value


@pytest.mark.parametrize(
    ("cls", "parameters"),
    [
        (CustomData, ["id", "values"]),
        (Browser, ["browser_type", "version"]),
        (Device, ["device_type"]),
        (OperatingSystem, ["os_type"]),
        (Geolocation, ["country", "region", "city", "postal_code", "latitude", "longitude"]),
        (Cookie, ["cookies"]),
        (UserAgent, ["value"]),
        (PageView, ["url", "title", "referrers"]),
        (Conversion, ["goal_id", "revenue", "negative"]),
        (UniqueIdentifier, ["value"]),
    ],
)
def test_constructor_parameters(cls: type, parameters: list[str]) -> None:
    """Constructor parameter names and order are those of the 3.4.0 API."""
    assert list(inspect.signature(cls).parameters) == parameters


def test_every_type_is_data_and_slotted() -> None:
    """Every data type derives from Data and has no per-instance dict."""
    for item in (
        CustomData(1),
        Browser(BrowserType.CHROME),
        Device(DeviceType.PHONE),
        OperatingSystem(OperatingSystemType.MAC),
        Geolocation("x"),
        Cookie({}),
        UserAgent("u"),
        PageView("u", None),
        Conversion(1),
        UniqueIdentifier(False),
    ):
        assert isinstance(item, Data)
        assert not hasattr(item, "__dict__")


def test_repr_shows_every_field() -> None:
    """The repr names the type and every field in constructor order."""
    assert repr(Conversion(7, 2.5)) == "Conversion(goal_id=7, revenue=2.5, negative=False)"
    assert repr(CustomData(1, "a")) == "CustomData(id=1, values=('a',))"
