"""``KameleoonClientConfig``: defaults, validation, setters and YAML loading (evaluation spec §6.1)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kameleoon import KameleoonClientConfig
from kameleoon._config import DEFAULT_CONFIG_PATH
from kameleoon.exceptions import ConfigCredentialsInvalid, ConfigException, ConfigFileNotFound


def make(**kwargs: object) -> KameleoonClientConfig:
    return KameleoonClientConfig("id", "secret", **kwargs)  # type: ignore[arg-type]


# -- credentials ----------------------------------------------------------------------------
@pytest.mark.parametrize("client_id", ["", None])
def test_missing_client_id(client_id: object) -> None:
    """An empty or None client id raises ConfigCredentialsInvalid with the documented message."""
    with pytest.raises(ConfigCredentialsInvalid) as info:
        KameleoonClientConfig(client_id, "secret")  # type: ignore[arg-type]
    assert str(info.value) == "Kameleoon error: Client ID is not specified"


@pytest.mark.parametrize("secret", ["", None])
def test_missing_client_secret(secret: object) -> None:
    """An empty or None client secret raises ConfigCredentialsInvalid with the documented message."""
    with pytest.raises(ConfigCredentialsInvalid) as info:
        KameleoonClientConfig("id", secret)  # type: ignore[arg-type]
    assert str(info.value) == "Kameleoon error: Client secret is not specified"


def test_client_id_is_checked_before_secret() -> None:
    """With both credentials missing, the client id is reported."""
    with pytest.raises(ConfigCredentialsInvalid, match="Client ID"):
        KameleoonClientConfig("", "")


# -- defaults -------------------------------------------------------------------------------
def test_defaults() -> None:
    """The documented defaults, exposed in seconds by the read-only properties."""
    config = make()
    assert config.client_id == "id"
    assert config.client_secret == "secret"
    assert config.refresh_interval_second == 3600
    assert config.session_duration_second == 1800
    assert config.default_timeout_second == 10.0
    assert config.tracking_interval_second == 1.0
    assert config.environment is None
    assert config.top_level_domain == ""
    assert config.multi_threading is False
    assert config.logger is logging.getLogger("kameleoon")  # "SDK logger" by default
    assert config.network_domain is None
    assert config.offline is False
    assert config.configuration_path is None


# the settings a YAML file can give (each also a documented read-only property)
YAML_SETTINGS = [
    "refresh_interval_second",
    "session_duration_second",
    "default_timeout_second",
    "tracking_interval_second",
    "environment",
    "top_level_domain",
    "multi_threading",
]


@pytest.mark.parametrize("name", ["client_id", "client_secret", *YAML_SETTINGS, "logger"])
def test_properties_are_read_only(name: str) -> None:
    """The documented properties cannot be assigned."""
    config = make()
    with pytest.raises(AttributeError):
        setattr(config, name, None)


# -- durations ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("minutes", "seconds"), [(1, 60), (0.5, 30), (10_000, 600_000), (0, 3600), (-5, 3600)]
)
def test_refresh_interval(minutes: float, seconds: float) -> None:
    """Refresh interval: minutes x 60, no maximum; <= 0 falls back to 60 minutes."""
    assert make(refresh_interval_minute=minutes).refresh_interval_second == seconds


@pytest.mark.parametrize(
    ("minutes", "seconds"), [(1, 60), (45, 2700), (100_000, 6_000_000), (0, 1800), (-1, 1800)]
)
def test_session_duration(minutes: float, seconds: float) -> None:
    """Session duration: minutes x 60, no maximum; <= 0 falls back to 30 minutes."""
    assert make(session_duration_minute=minutes).session_duration_second == seconds


@pytest.mark.parametrize(
    ("millis", "seconds"), [(1, 0.001), (2500, 2.5), (10**7, 10_000), (0, 10.0), (-3, 10.0)]
)
def test_default_timeout(millis: float, seconds: float) -> None:
    """Default timeout: milliseconds / 1000; <= 0 falls back to 10 000 ms."""
    assert make(default_timeout_millisecond=millis).default_timeout_second == seconds


@pytest.mark.parametrize(
    ("millis", "seconds"),
    [(100, 0.1), (99, 0.1), (0, 0.1), (-50, 0.1), (500, 0.5), (1000, 1.0), (1001, 1.0), (60_000, 1.0)],
)
def test_tracking_interval_is_clamped(millis: int, seconds: float) -> None:
    """Tracking interval: clamped to [100, 1000] ms (values below 100 become 100, not the default)."""
    assert make(tracking_interval_millisecond=millis).tracking_interval_second == seconds


def test_out_of_range_values_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Replaced or clamped values are reported with a warning."""
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        make(refresh_interval_minute=0, tracking_interval_millisecond=5)
    text = caplog.text
    assert "refresh_interval_minute" in text
    assert "tracking_interval_millisecond" in text


def test_setters_apply_the_same_validation() -> None:
    """Every setter validates like the constructor."""
    config = make()
    config.set_refresh_interval_minute(2)
    config.set_session_duration_minute(-1)
    config.set_default_timeout_millisecond(1500)
    config.set_tracking_interval_millisecond(20)
    config.set_environment("staging")
    config.set_top_level_domain("HTTPS://Example.COM")
    assert config.refresh_interval_second == 120
    assert config.session_duration_second == 1800
    assert config.default_timeout_second == 1.5
    assert config.tracking_interval_second == 0.1
    assert config.environment == "staging"
    assert config.top_level_domain == "example.com"
    config.set_refresh_interval_minute(0)
    assert config.refresh_interval_second == 3600


def test_multi_threading_is_deprecated(caplog: pytest.LogCaptureFixture) -> None:
    """``multi_threading`` is stored, has no effect, and setting it logs a deprecation warning."""
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        config = make(multi_threading=True)
    assert config.multi_threading is True
    assert "deprecated" in caplog.text
    config.set_multi_threading(False)
    assert config.multi_threading is False


def test_logger_is_stored() -> None:
    """A logger given to the constructor or to ``set_logger`` is exposed by ``logger``."""
    logger = logging.getLogger("mine")
    config = make(logger=logger)
    assert config.logger is logger
    config.set_logger(None)
    assert config.logger is logging.getLogger("kameleoon")  # the SDK's logger by default
    adapter = logging.LoggerAdapter(logger, {"app": "shop"})
    config.set_logger(adapter)  # type: ignore[arg-type]
    assert config.logger is adapter


def test_an_object_that_cannot_log_is_not_taken_for_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        config = make(logger="mine")
    assert config.logger is logging.getLogger("kameleoon")
    assert "no logging methods" in caplog.text


def test_environment_is_kept_verbatim() -> None:
    """Any string environment is kept as given (no validation)."""
    assert make(environment="Pré prod ").environment == "Pré prod "


# -- top-level domain ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("", ""),
        ("example.com", "example.com"),
        ("www.example.com", "www.example.com"),
        (".example.com", ".example.com"),
        ("EXAMPLE.Com", "example.com"),
        ("http://example.com", "example.com"),
        ("https://shop.example.co.uk", "shop.example.co.uk"),
        ("HTTPS://Example.com", "example.com"),
        ("my-site.example.com", "my-site.example.com"),
        ("a1.b2", "a1.b2"),
        ("localhost", ""),
        ("example.com:8080", ""),
        ("example.com/", ""),
        ("-bad.com", ""),
        ("bad-.com", ""),
        ("under_score.com", ""),
        ("exa mple.com", ""),
        ("example..com", ""),
        ("ftp://example.com", ""),
        ("http://http://example.com", ""),
        ("..example.com", ""),
    ],
)
def test_top_level_domain(given: str, kept: str) -> None:
    """The domain is lower-cased, loses one http(s):// prefix and must be a dotted host name."""
    assert make(top_level_domain=given).top_level_domain == kept


def test_top_level_domain_label_count() -> None:
    """2 to 127 labels are accepted; 128 are not."""
    assert make(top_level_domain=".".join(["a"] * 127)).top_level_domain == ".".join(["a"] * 127)
    assert make(top_level_domain=".".join(["a"] * 128)).top_level_domain == ""


def test_invalid_top_level_domain_is_logged_as_error(caplog: pytest.LogCaptureFixture) -> None:
    """A rejected domain is reported with an error log; an empty one (the default) at info level."""
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        make(top_level_domain="localhost")
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kameleoon"):
        make(top_level_domain="")
    assert [r.levelno for r in caplog.records] == [logging.INFO]


# -- extensions of this implementation -------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, None),
        ("", None),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("localhost", "localhost"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://kameleoon.internal", "https://kameleoon.internal"),
        ("not a domain", None),
    ],
)
def test_network_domain(given: str | None, kept: str | None) -> None:
    """``network_domain``: a base URL with a scheme, a domain, or None when unusable."""
    assert make(network_domain=given).network_domain == kept


def test_max_visitors() -> None:
    """``max_visitors`` is kept; below 1, or not an integer, it is a configuration error."""
    assert make(max_visitors=7).max_visitors == 7
    for wrong in (0, -3, 2.5, "10", True, None):
        with pytest.raises(ConfigException, match="max_visitors must be an integer of at least 1"):
            make(max_visitors=wrong)


@pytest.mark.parametrize(
    ("key", "value", "seconds"),
    [
        ("refresh_interval_minute", float("nan"), 3600.0),
        ("refresh_interval_minute", "15", 3600.0),
        ("refresh_interval_minute", None, 3600.0),
        ("refresh_interval_minute", True, 3600.0),
        ("refresh_interval_minute", 1e9, 365 * 24 * 3600.0),
        ("refresh_interval_minute", float("inf"), 365 * 24 * 3600.0),
        ("session_duration_minute", 10**400, 365 * 24 * 3600.0),
        ("default_timeout_millisecond", float("inf"), 365 * 24 * 3600.0),
        ("default_timeout_millisecond", "fast", 10.0),
        ("tracking_interval_millisecond", float("nan"), 1.0),
        ("tracking_interval_millisecond", "500", 1.0),
    ],
)
def test_durations_that_are_not_usable_numbers(
    key: str, value: object, seconds: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a number (NaN, a string, None, a boolean): the default, with a warning. Longer than a
    year: one year (timers and socket timeouts overflow on huge values), with a warning."""
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        config = make(**{key: value})
    exposed = key.replace("_minute", "_second").replace("_millisecond", "_second")
    assert getattr(config, exposed) == seconds
    assert key in caplog.text


@pytest.mark.parametrize(
    ("key", "value", "exposed"),
    [("top_level_domain", 123, ""), ("network_domain", 123, None), ("environment", 5, None)],
)
def test_strings_of_the_wrong_type_are_ignored(
    key: str, value: object, exposed: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kameleoon"):
        config = make(**{key: value})
    assert getattr(config, key) == exposed
    assert key in caplog.text


def test_offline_and_configuration_path(tmp_path: Path) -> None:
    """``offline`` is a boolean and ``configuration_path`` accepts path objects."""
    config = make(offline=1, configuration_path=tmp_path / "c.json")
    assert config.offline is True
    assert config.configuration_path == str(tmp_path / "c.json")


def test_repr_hides_the_secret() -> None:
    """The repr shows the client id but never the client secret."""
    text = repr(KameleoonClientConfig("the-id", "the-secret"))
    assert "the-id" in text
    assert "the-secret" not in text


# -- YAML -----------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "client-python.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_yaml_default_path() -> None:
    """The default YAML path is the documented one."""
    assert DEFAULT_CONFIG_PATH == "/etc/kameleoon/client-python.yaml"


def test_yaml_missing_file(tmp_path: Path) -> None:
    """A missing file raises ConfigFileNotFound."""
    with pytest.raises(ConfigFileNotFound):
        KameleoonClientConfig.read_from_yaml(str(tmp_path / "absent.yaml"))


def test_yaml_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory path raises ConfigFileNotFound too."""
    with pytest.raises(ConfigFileNotFound):
        KameleoonClientConfig.read_from_yaml(str(tmp_path))


def test_yaml_all_keys(tmp_path: Path) -> None:
    """Every documented key is read and validated like the constructor arguments."""
    path = write(
        tmp_path,
        "client_id: my-id\n"
        "client_secret: my-secret\n"
        "refresh_interval_minute: 2\n"
        "session_duration_minute: 0.5\n"
        "default_timeout_millisecond: 2000\n"
        "tracking_interval_millisecond: 50\n"
        "environment: staging\n"
        "top_level_domain: https://Example.com\n"
        "multi_threading: true\n",
    )
    config = KameleoonClientConfig.read_from_yaml(path)
    assert (config.client_id, config.client_secret) == ("my-id", "my-secret")
    assert config.refresh_interval_second == 120
    assert config.session_duration_second == 30
    assert config.default_timeout_second == 2.0
    assert config.tracking_interval_second == 0.1
    assert config.environment == "staging"
    assert config.top_level_domain == "example.com"
    assert config.multi_threading is True


def test_yaml_absent_credentials_use_placeholders(tmp_path: Path) -> None:
    """Absent credentials become the placeholders "1" and "2"."""
    config = KameleoonClientConfig.read_from_yaml(write(tmp_path, "environment: prod\n"))
    assert (config.client_id, config.client_secret) == ("1", "2")


def test_yaml_empty_file_uses_placeholders(tmp_path: Path) -> None:
    """An empty YAML document is a configuration of defaults."""
    config = KameleoonClientConfig.read_from_yaml(write(tmp_path, ""))
    assert (config.client_id, config.client_secret) == ("1", "2")
    assert config.refresh_interval_second == 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("client_id: null\n", "Client ID"),
        ("client_id: ''\n", "Client ID"),
        ("client_secret: null\n", "Client secret"),
        ("client_secret: ''\n", "Client secret"),
    ],
)
def test_yaml_explicit_empty_credentials(tmp_path: Path, text: str, message: str) -> None:
    """Explicit null or empty credentials raise ConfigCredentialsInvalid."""
    with pytest.raises(ConfigCredentialsInvalid, match=message):
        KameleoonClientConfig.read_from_yaml(write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "refresh_interval_minute: soon\n",
        "refresh_interval_minute: true\n",
        "session_duration_minute: [1]\n",
        "default_timeout_millisecond: 2.5\n",
        "default_timeout_millisecond: '2000'\n",
        "tracking_interval_millisecond: 500.0\n",
        "tracking_interval_millisecond: false\n",
        "environment: 5\n",
        "top_level_domain: 12\n",
        "multi_threading: 1\n",
        "multi_threading: 'yes'\n",
    ],
)
def test_yaml_wrong_types_are_ignored(tmp_path: Path, text: str) -> None:
    """A value of the wrong type is ignored: the default applies and nothing is raised."""
    config = KameleoonClientConfig.read_from_yaml(write(tmp_path, text))
    default = make()
    for name in YAML_SETTINGS:
        assert getattr(config, name) == getattr(default, name), name


def test_yaml_float_minutes_are_accepted(tmp_path: Path) -> None:
    """Minutes may be floats; milliseconds must be integers."""
    config = KameleoonClientConfig.read_from_yaml(
        write(tmp_path, "refresh_interval_minute: 1.5\ndefault_timeout_millisecond: 750\n")
    )
    assert config.refresh_interval_second == 90
    assert config.default_timeout_second == 0.75


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "key: [unclosed\n"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    """A YAML document that is not a mapping (or not YAML) raises a ConfigException."""
    with pytest.raises(ConfigException):
        KameleoonClientConfig.read_from_yaml(write(tmp_path, text))


def test_yaml_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("client_id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigException, match="not UTF-8"):
        KameleoonClientConfig.read_from_yaml(str(path))


def test_yaml_path_must_be_a_path_not_a_file_descriptor(tmp_path: Path) -> None:
    """An integer would be taken for an open file descriptor (read, then closed under the
    application's feet): it is refused."""
    path = tmp_path / "c.yaml"
    path.write_text("client_id: a\nclient_secret: b\n", encoding="utf-8")
    with path.open() as f, pytest.raises(TypeError):
        KameleoonClientConfig.read_from_yaml(f.fileno())  # type: ignore[arg-type]
    assert KameleoonClientConfig.read_from_yaml(path).client_id == "a"  # type: ignore[arg-type]
