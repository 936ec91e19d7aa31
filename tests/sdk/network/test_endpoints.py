"""Every URL form the SDK builds (kameleoon._network.endpoints)."""

from __future__ import annotations

import pytest

from kameleoon._network.endpoints import Endpoints

TRACKING_QUERY = "sdkName=PYTHON&sdkVersion=3.4.0&siteCode=s1&bodyUa=true"


def urls(endpoints: Endpoints) -> dict[str, str]:
    return {
        "config": endpoints.configuration(),
        "config_ts": endpoints.configuration("1700000000123"),
        "sse": endpoints.sse(),
        "token": endpoints.token(),
        "tracking": endpoints.tracking(),
        "map": endpoints.remote_data("k/1 2"),
        "visitor": endpoints.visitor_data([("visitorCode", "v 1"), ("version", 0)]),
    }


def test_vendor_hosts_by_default() -> None:
    assert urls(Endpoints("s1", None, None)) == {
        "config": "https://sdk-config.kameleoon.eu/s1",
        "config_ts": "https://sdk-config.kameleoon.eu/s1?ts=1700000000123",
        "sse": "https://events.kameleoon.com:8110/sse?siteCode=s1",
        "token": "https://api.kameleoon.com/oauth/token",
        "tracking": f"https://data.kameleoon.io/visit/events?{TRACKING_QUERY}",
        "map": "https://data.kameleoon.io/map/map?siteCode=s1&key=k%2F1%202",
        "visitor": "https://data.kameleoon.io/visit/visitor?siteCode=s1&visitorCode=v%201&version=0",
    }


def test_bare_domain_builds_the_vendor_host_names_under_it() -> None:
    assert urls(Endpoints("s1", "example.org", None)) == {
        "config": "https://sdk-config.example.org/s1",
        "config_ts": "https://sdk-config.example.org/s1?ts=1700000000123",
        "sse": "https://events.example.org:8110/sse?siteCode=s1",
        "token": "https://api.example.org/oauth/token",
        "tracking": f"https://data.example.org/visit/events?{TRACKING_QUERY}",
        "map": "https://data.example.org/map/map?siteCode=s1&key=k%2F1%202",
        "visitor": "https://data.example.org/visit/visitor?siteCode=s1&visitorCode=v%201&version=0",
    }


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "https://kam.example.com/prefix"]
)
def test_base_url_holds_every_endpoint_with_the_vendor_paths(base: str) -> None:
    root = base.rstrip("/")
    assert urls(Endpoints("s1", base, None)) == {
        "config": f"{root}/s1",
        "config_ts": f"{root}/s1?ts=1700000000123",
        "sse": f"{root}/sse?siteCode=s1",
        "token": f"{root}/oauth/token",
        "tracking": f"{root}/visit/events?{TRACKING_QUERY}",
        "map": f"{root}/map/map?siteCode=s1&key=k%2F1%202",
        "visitor": f"{root}/visit/visitor?siteCode=s1&visitorCode=v%201&version=0",
    }


def test_environment_comes_before_ts_and_is_encoded() -> None:
    endpoints = Endpoints("site code", None, "pre prod")
    assert endpoints.configuration() == "https://sdk-config.kameleoon.eu/site%20code?environment=pre%20prod"
    assert endpoints.configuration("5") == (
        "https://sdk-config.kameleoon.eu/site%20code?environment=pre%20prod&ts=5"
    )
    assert endpoints.sse() == "https://events.kameleoon.com:8110/sse?siteCode=site%20code"


def test_data_api_domain_replaces_the_vendor_data_host_and_sticks() -> None:
    endpoints = Endpoints("s1", None, None)
    assert endpoints.set_data_api_domain("data-eu.kameleoon.io:8443")
    assert endpoints.tracking() == f"https://data-eu.kameleoon.io:8443/visit/events?{TRACKING_QUERY}"
    assert endpoints.remote_data("k") == "https://data-eu.kameleoon.io:8443/map/map?siteCode=s1&key=k"
    assert endpoints.configuration() == "https://sdk-config.kameleoon.eu/s1"  # only the Data API moves


def test_data_api_domain_with_a_bare_domain_keeps_only_its_first_label() -> None:
    endpoints = Endpoints("s1", "example.org", None)
    assert endpoints.set_data_api_domain("data-eu.kameleoon.io")
    assert endpoints.data_api == "https://data-eu.example.org"


def test_data_api_domain_is_ignored_under_a_base_url() -> None:
    endpoints = Endpoints("s1", "http://127.0.0.1:9", None)
    assert not endpoints.set_data_api_domain("data-eu.kameleoon.io")
    assert endpoints.data_api == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "bad", ["", "evil.com/path", "a b.com", "https://x.com", "x.com:port", "x.com?q=1", "-x.com", "x..com"]
)
def test_invalid_data_api_domain_is_ignored(bad: str) -> None:
    endpoints = Endpoints("s1", None, None)
    assert not endpoints.set_data_api_domain(bad)
    assert endpoints.data_api == "https://data.kameleoon.io"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Example.ORG.", "example.org"),
        ("localhost", "localhost"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("HTTPS://kam.example.com/p", "HTTPS://kam.example.com/p"),
        ("not a domain", None),
        ("", None),
    ],
)
def test_network_domain_setting_feeds_the_endpoints(given: str, expected: str | None) -> None:
    """The public setting is cleaned, then decides the URL form."""
    from kameleoon import KameleoonClientConfig

    cleaned = KameleoonClientConfig("id", "secret", network_domain=given).network_domain
    assert cleaned == expected
    endpoints = Endpoints("s1", cleaned, None)
    if expected is None:
        assert endpoints.token() == "https://api.kameleoon.com/oauth/token"
    elif "://" in expected:
        assert endpoints.token() == f"{expected}/oauth/token"
    else:
        assert endpoints.token() == f"https://api.{expected}/oauth/token"
