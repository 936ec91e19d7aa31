"""The public surface: exported names, and the argument names, order and defaults of every public
method against the documented 3.4.0 API (evaluation spec §2.6, §4.2, §5.2, §6)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

import kameleoon
import kameleoon.data
import kameleoon.exceptions
import kameleoon.testing
import kameleoon.types
from kameleoon import (
    KameleoonClient,
    KameleoonClientConfig,
    KameleoonClientFactory,
    KameleoonWSGIMiddleware,
    RemoteVisitorDataFilter,
    Variable,
    Variation,
)

EMPTY = inspect.Parameter.empty
VAR_POSITIONAL = "*"


def test_top_level_exports() -> None:
    """``kameleoon.__all__`` is exactly the documented entry points, sorted, all importable."""
    assert kameleoon.__all__ == [
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
    for name in kameleoon.__all__:
        assert hasattr(kameleoon, name)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            kameleoon.data,
            [
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
            ],
        ),
        (kameleoon.types, ["RemoteVisitorDataFilter", "Variable", "Variation"]),
        (
            kameleoon.exceptions,
            [
                "ConfigCredentialsInvalid",
                "ConfigException",
                "ConfigFileNotFound",
                "FeatureEnvironmentDisabled",
                "FeatureError",
                "FeatureNotFound",
                "FeatureVariableNotFound",
                "FeatureVariationNotFound",
                "KameleoonError",
                "NotFoundError",
                "SiteCodeIsEmpty",
                "VisitorCodeInvalid",
            ],
        ),
        (
            kameleoon.testing,
            [
                "MockTransport",
                "Request",
                "Response",
                "client_transport",
                "close_client",
                "create_client",
                "flush_tracking",
                "update_configuration",
            ],
        ),
    ],
    ids=["data", "types", "exceptions", "testing"],
)
def test_submodule_exports(module: Any, names: list[str]) -> None:
    """Each public submodule exports exactly its documented names, all importable."""
    assert sorted(module.__all__) == names
    for name in names:
        assert hasattr(module, name)


def test_top_level_reexports_are_the_same_objects() -> None:
    """The top-level names are the very objects of the submodules."""
    for name in ("CustomData", "Browser", "BrowserType", "PageView", "Conversion", "UserAgent"):
        assert getattr(kameleoon, name) is getattr(kameleoon.data, name)
    for name in ("Variable", "Variation", "RemoteVisitorDataFilter"):
        assert getattr(kameleoon, name) is getattr(kameleoon.types, name)


def signature(func: Any) -> list[tuple[str, Any]]:
    """(name, default) for every parameter but ``self``; ``*args`` is reported as (name, "*")."""
    out = []
    for name, parameter in inspect.signature(func).parameters.items():
        if name == "self":
            continue
        default = VAR_POSITIONAL if parameter.kind is parameter.VAR_POSITIONAL else parameter.default
        out.append((name, default))
    return out


CLIENT_METHODS: dict[str, list[tuple[str, Any]]] = {
    "wait_init": [],
    "wait_init_async": [],
    "on_update_configuration": [("handler", EMPTY)],
    "is_feature_active": [("visitor_code", EMPTY), ("feature_key", EMPTY), ("is_unique_identifier", None)],
    "get_feature_variation_key": [
        ("visitor_code", EMPTY),
        ("feature_key", EMPTY),
        ("is_unique_identifier", None),
    ],
    "get_feature_variable": [
        ("visitor_code", EMPTY),
        ("feature_key", EMPTY),
        ("variable_key", EMPTY),
        ("is_unique_identifier", None),
    ],
    # 3.4.0's code requires both arguments, its documentation shows the one-argument form: both work here
    "get_feature_variation_variables": [("feature_key", EMPTY), ("variation_key", None)],
    "get_active_features": [("visitor_code", EMPTY)],
    "get_active_feature_list_for_visitor": [("visitor_code", EMPTY)],
    "get_feature_list": [],
    "get_engine_tracking_code": [("visitor_code", EMPTY)],
    "add_data": [("visitor_code", EMPTY), ("args", VAR_POSITIONAL)],
    "track_conversion": [
        ("visitor_code", EMPTY),
        ("goal_id", EMPTY),
        ("revenue", 0.0),
        ("is_unique_identifier", None),
    ],
    "flush": [("visitor_code", None), ("is_unique_identifier", None), ("instant", False)],
    "set_legal_consent": [("visitor_code", EMPTY), ("consent", EMPTY), ("cookies", None)],
    "get_visitor_code": [("cookies_readonly", None), ("cookies", None), ("default_visitor_code", None)],
    "get_remote_data": [("key", EMPTY), ("timeout", None)],
    "get_remote_data_async": [("key", EMPTY), ("timeout", None)],
    "get_remote_visitor_data": [
        ("visitor_code", EMPTY),
        ("add_data", True),
        ("timeout", None),
        ("data_filter", None),
        ("is_unique_identifier", None),
    ],
    "get_remote_visitor_data_async": [
        ("visitor_code", EMPTY),
        ("add_data", True),
        ("timeout", None),
        ("data_filter", None),
        ("is_unique_identifier", None),
    ],
    "get_visitor_warehouse_audience": [
        ("visitor_code", EMPTY),
        ("custom_data_index", EMPTY),
        ("warehouse_key", None),
        ("timeout", None),
    ],
    "get_visitor_warehouse_audience_async": [
        ("visitor_code", EMPTY),
        ("custom_data_index", EMPTY),
        ("warehouse_key", None),
        ("timeout", None),
    ],
}


def test_client_public_methods_are_exactly_the_documented_ones() -> None:
    """The client has no undocumented public attribute and misses none."""
    public = {name for name in dir(KameleoonClient) if not name.startswith("_")}
    assert public == set(CLIENT_METHODS)


@pytest.mark.parametrize(("name", "expected"), sorted(CLIENT_METHODS.items()))
def test_client_method_signature(name: str, expected: list[tuple[str, Any]]) -> None:
    """Argument names, order and defaults of each client method."""
    assert signature(getattr(KameleoonClient, name)) == expected


@pytest.mark.parametrize("name", [n for n in CLIENT_METHODS if n.endswith("_async")])
def test_async_twins_are_coroutine_functions(name: str) -> None:
    """Every ``*_async`` method is a coroutine function with the same arguments as its twin."""
    method = getattr(KameleoonClient, name)
    assert inspect.iscoroutinefunction(method)
    assert signature(method) == signature(getattr(KameleoonClient, name.removesuffix("_async")))


def test_config_signature() -> None:
    """KameleoonClientConfig: the 3.4.0 arguments in order with their defaults, extensions after."""
    params = signature(KameleoonClientConfig)
    assert params[:10] == [
        ("client_id", EMPTY),
        ("client_secret", EMPTY),
        ("refresh_interval_minute", 60),
        ("session_duration_minute", 30),
        ("default_timeout_millisecond", 10000),
        ("tracking_interval_millisecond", 1000),
        ("environment", None),
        ("top_level_domain", ""),
        ("multi_threading", False),
        ("logger", None),
    ]
    kinds = inspect.signature(KameleoonClientConfig).parameters
    assert all(kinds[name].kind is inspect.Parameter.KEYWORD_ONLY for name, _ in params[11:])


def test_config_methods() -> None:
    """The documented setters and ``read_from_yaml`` exist with one argument each."""
    for name in (
        "set_refresh_interval_minute",
        "set_session_duration_minute",
        "set_default_timeout_millisecond",
        "set_tracking_interval_millisecond",
        "set_environment",
        "set_top_level_domain",
        "set_multi_threading",
        "set_logger",
    ):
        assert len(signature(getattr(KameleoonClientConfig, name))) == 1, name
    assert signature(KameleoonClientConfig.read_from_yaml) == [("path", "/etc/kameleoon/client-python.yaml")]


def test_factory_signatures() -> None:
    """KameleoonClientFactory.create(site_code, config=None, config_path=DEFAULT) and forget(site_code)."""
    assert signature(KameleoonClientFactory.create) == [
        ("site_code", EMPTY),
        ("config", None),
        ("config_path", "/etc/kameleoon/client-python.yaml"),
    ]
    assert signature(KameleoonClientFactory.forget) == [("site_code", EMPTY)]


def test_middleware_signature() -> None:
    """KameleoonWSGIMiddleware(app, client, default_visitor_code=None)."""
    assert signature(KameleoonWSGIMiddleware) == [
        ("app", EMPTY),
        ("client", EMPTY),
        ("default_visitor_code", None),
    ]


def test_remote_visitor_data_filter_fields() -> None:
    """RemoteVisitorDataFilter's fields, in order, with the documented defaults."""
    assert [(f.name, f.default) for f in dataclasses.fields(RemoteVisitorDataFilter)] == [
        ("previous_visit_amount", 1),
        ("current_visit", True),
        ("custom_data", True),
        ("page_views", False),
        ("geolocation", False),
        ("device", False),
        ("browser", False),
        ("operating_system", False),
        ("conversions", False),
        ("experiments", False),
        ("kcs", False),
    ]
    assert RemoteVisitorDataFilter(3, False).previous_visit_amount == 3


def test_result_types() -> None:
    """Variation(key, id_, experiment_id, variables) and Variable(key, type, value)."""
    assert [f.name for f in dataclasses.fields(Variation)] == ["key", "id_", "experiment_id", "variables"]
    assert [f.name for f in dataclasses.fields(Variable)] == ["key", "type", "value"]
    assert Variation("on", None, None).variables == {}
    by_name = Variation("on", id=7, experiment_id=9)  # the reference's keyword is ``id``
    assert by_name == Variation("on", 7, 9, {}) == Variation("on", id_=7, experiment_id=9)
    assert by_name.id_ == 7 and dataclasses.replace(by_name, key="off").id_ == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        Variable("k", "STRING", "v").value = "x"  # type: ignore[misc]


def test_exception_constructors() -> None:
    """FeatureEnvironmentDisabled(feature_key, environment=None); the others take one message."""
    assert signature(kameleoon.exceptions.FeatureEnvironmentDisabled) == [
        ("feature_key", ""),
        ("environment", None),
    ]
    for name in (
        "FeatureNotFound",
        "FeatureVariationNotFound",
        "FeatureVariableNotFound",
        "VisitorCodeInvalid",
    ):
        assert len(signature(getattr(kameleoon.exceptions, name))) == 1


def test_version_string() -> None:
    """``__version__`` is a string; the protocol identity is PYTHON 3.4.0."""
    from kameleoon._engine.sdk import SDK_LANGUAGE, SDK_VERSION

    assert isinstance(kameleoon.__version__, str)
    assert (SDK_LANGUAGE, SDK_VERSION) == ("PYTHON", "3.4.0")


def test_package_is_typed() -> None:
    """The package ships a ``py.typed`` marker."""
    from pathlib import Path

    assert (Path(kameleoon.__file__).parent / "py.typed").is_file()
