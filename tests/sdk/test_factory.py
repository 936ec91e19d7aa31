"""``KameleoonClientFactory``: caching per site code, YAML fallback, errors (evaluation spec §6.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kameleoon import KameleoonClient, KameleoonClientConfig, KameleoonClientFactory
from kameleoon.exceptions import ConfigFileNotFound, SiteCodeIsEmpty

from ._support import example_config


@pytest.fixture
def offline(tmp_path: Path) -> KameleoonClientConfig:
    """An offline configuration (no network at all) booting on the worked-example document."""
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(example_config()), encoding="utf-8")
    return KameleoonClientConfig("id", "secret", configuration_path=path, offline=True)


@pytest.fixture(autouse=True)
def forget_clients() -> Iterator[None]:
    """Every site code used here is forgotten afterwards (the factory cache is process-wide)."""
    yield
    for site in ("site-a", "site-b", "site-yaml"):
        KameleoonClientFactory.forget(site)


def test_create_returns_a_client(offline: KameleoonClientConfig) -> None:
    """``create`` builds a working client for a new site code."""
    client = KameleoonClientFactory.create("site-a", offline)
    assert isinstance(client, KameleoonClient)
    assert client.wait_init() is True
    assert client.get_feature_list() == ["new_checkout", "pricing_banner", "recommendations"]


def test_same_site_code_returns_the_cached_client(offline: KameleoonClientConfig) -> None:
    """A second ``create`` for the same site code returns the same object and ignores its config."""
    first = KameleoonClientFactory.create("site-a", offline)
    other = KameleoonClientConfig("other", "other", offline=True)
    assert KameleoonClientFactory.create("site-a", other) is first
    assert KameleoonClientFactory.create("site-a") is first  # no YAML read for a cached client


def test_different_site_codes_get_different_clients(offline: KameleoonClientConfig) -> None:
    """Each site code has its own client."""
    assert KameleoonClientFactory.create("site-a", offline) is not KameleoonClientFactory.create(
        "site-b", offline
    )


def test_forget_drops_the_cached_client(offline: KameleoonClientConfig) -> None:
    """After ``forget`` the next ``create`` builds a new client; forgetting twice is harmless."""
    first = KameleoonClientFactory.create("site-a", offline)
    KameleoonClientFactory.forget("site-a")
    KameleoonClientFactory.forget("site-a")
    assert KameleoonClientFactory.create("site-a", offline) is not first


@pytest.mark.parametrize("site_code", ["", None])
def test_empty_site_code(offline: KameleoonClientConfig, site_code: str | None) -> None:
    """An empty site code raises SiteCodeIsEmpty."""
    with pytest.raises(SiteCodeIsEmpty):
        KameleoonClientFactory.create(site_code, offline)  # type: ignore[arg-type]


@pytest.mark.parametrize("site_code", ["", None])
def test_a_client_made_directly_checks_its_site_code(
    offline: KameleoonClientConfig, site_code: str | None
) -> None:
    """KameleoonClient(site_code, config) raises SiteCodeIsEmpty too (not only the factory)."""
    from kameleoon import KameleoonClient

    with pytest.raises(SiteCodeIsEmpty):
        KameleoonClient(site_code, offline)  # type: ignore[arg-type]


def test_missing_yaml_is_reported_before_the_site_code(tmp_path: Path) -> None:
    """Without a config, the YAML is read first: a missing file wins over an empty site code."""
    with pytest.raises(ConfigFileNotFound):
        KameleoonClientFactory.create("", config_path=str(tmp_path / "absent.yaml"))


def test_yaml_is_used_without_config(tmp_path: Path) -> None:
    """Without a config object the YAML file at ``config_path`` configures the client."""
    document = tmp_path / "configuration.json"
    document.write_text(json.dumps(example_config()), encoding="utf-8")
    yaml_path = tmp_path / "client.yaml"
    yaml_path.write_text(
        f"client_id: yaml-id\nclient_secret: yaml-secret\nenvironment: staging\n"
        f"offline: true\nconfiguration_path: {document}\n",
        encoding="utf-8",
    )
    client = KameleoonClientFactory.create("site-yaml", config_path=str(yaml_path))
    assert client._settings.client_id == "yaml-id"
    assert client._settings.environment == "staging"
    assert client.get_feature_variation_key("visitor_42", "new_checkout") == "two_step"


def test_wrong_argument_types_are_refused_clearly(offline: KameleoonClientConfig) -> None:
    with pytest.raises(TypeError, match="site_code must be a str"):
        KameleoonClientFactory.create(["site-a"], offline)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a KameleoonClientConfig"):
        KameleoonClientFactory.create("site-a", "not a configuration")  # type: ignore[arg-type]
    KameleoonClientFactory.forget(["site-a"])  # type: ignore[arg-type]  # no client: nothing to do


def test_config_path_none_means_the_default_file() -> None:
    with pytest.raises(ConfigFileNotFound, match=r"/etc/kameleoon/client-python\.yaml"):
        KameleoonClientFactory.create("site-yaml", None, None)  # type: ignore[arg-type]
