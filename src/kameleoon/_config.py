"""``KameleoonClientConfig``: the SDK settings, their defaults, clamping and YAML loading."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from kameleoon.exceptions import ConfigCredentialsInvalid, ConfigException, ConfigFileNotFound

__all__ = ["DEFAULT_CONFIG_PATH", "MAX_SECONDS", "KameleoonClientConfig", "config_from_yaml"]

DEFAULT_CONFIG_PATH = "/etc/kameleoon/client-python.yaml"

_log = logging.getLogger("kameleoon")

_DEFAULT_REFRESH_MINUTES = 60
_DEFAULT_SESSION_MINUTES = 30
_DEFAULT_TIMEOUT_MS = 10_000
_DEFAULT_TRACKING_MS = 1_000
_MIN_TRACKING_MS = 100
_MAX_TRACKING_MS = 1_000
DEFAULT_MAX_VISITORS = 500_000
# Longest duration kept (one year): longer ones are clamped, as timers and socket timeouts
# overflow on very large values.
MAX_SECONDS = 365 * 24 * 3600.0
_LOGGER_METHODS = ("debug", "info", "warning", "error", "exception")

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL}){{1,126}}")
_SCHEME_RE = re.compile(r"^https?://", re.IGNORECASE)


def _clean_top_level_domain(value: object) -> str:
    if not value:
        _log.info("top_level_domain is empty: the visitor code cookie is written without a Domain")
        return ""
    if not isinstance(value, str):
        _log.error("top_level_domain %r is not a string: it is ignored", value)
        return ""
    domain = _SCHEME_RE.sub("", value.lower(), count=1)
    if _DOMAIN_RE.fullmatch(domain) is None:
        _log.error("top_level_domain %r is not a valid domain: it is ignored", value)
        return ""
    return domain


def _clean_network_domain(value: object) -> str | None:
    """A URL with a scheme is kept as a base URL; a bare domain must look like a domain."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _log.error("network_domain %r is not a string: default hosts are used", value)
        return None
    if _SCHEME_RE.match(value):
        return value.rstrip("/")
    domain = value.lower().strip(".")
    if domain == "localhost" or _DOMAIN_RE.fullmatch(domain):
        return domain
    _log.error("network_domain %r is neither a domain nor an http(s) URL: default hosts are used", value)
    return None


def _is_number(value: object) -> bool:
    """A real number that is not NaN (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and value.__class__ is not bool and value == value


def _seconds(value: float, default: float, unit: float, name: str) -> float:
    """``value`` (in units of ``unit`` seconds) in seconds: the default when it is not a
    positive number, at most :data:`MAX_SECONDS`, each with a warning."""
    if not _is_number(value) or value <= 0:
        _log.warning("%s must be a positive number, %r given: the default %r is used", name, value, default)
        value = default
    if value * unit > MAX_SECONDS:
        _log.warning("%s %r is longer than a year: one year is used", name, value)
        return MAX_SECONDS
    return value * unit


def _checked_logger(logger: Any) -> Any:
    """``logger`` when it can log (a ``logging.Logger``, a ``LoggerAdapter``...), else None."""
    if logger is None or all(callable(getattr(logger, name, None)) for name in _LOGGER_METHODS):
        return logger
    _log.warning("logger %r has no logging methods: the kameleoon logger is used", logger)
    return None


class KameleoonClientConfig:
    """Settings of a :class:`KameleoonClient`.

    Durations are given in the unit their name says; out-of-range values are replaced by the
    default (or clamped) with a logged warning rather than rejected. ``network_domain`` points
    the SDK at another back end: a bare domain (``example.com``) derives the host names
    ``sdk-config.example.com``, ``data.example.com``, ``api.example.com`` and
    ``events.example.com``; a URL with a scheme (``http://127.0.0.1:8000``) is the base URL
    of every endpoint. ``max_visitors`` caps the in-memory visitor store (least recently used
    visitors are evicted first, and counted).

    ``configuration_path`` names a configuration document (JSON, the format the server
    serves) that is active from the start, before and whatever the first download does: an
    application can boot without the network. ``offline=True`` never uses the network: the
    configuration comes only from ``configuration_path`` and tracking is not sent (it is
    discarded, and counted).

    Raises :class:`ConfigCredentialsInvalid` when ``client_id`` or ``client_secret`` is empty.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_interval_minute: float = _DEFAULT_REFRESH_MINUTES,
        session_duration_minute: float = _DEFAULT_SESSION_MINUTES,
        default_timeout_millisecond: float = _DEFAULT_TIMEOUT_MS,
        tracking_interval_millisecond: int = _DEFAULT_TRACKING_MS,
        environment: str | None = None,
        top_level_domain: str = "",
        multi_threading: bool = False,
        logger: logging.Logger | None = None,
        network_domain: str | None = None,
        *,
        max_visitors: int = DEFAULT_MAX_VISITORS,
        configuration_path: str | os.PathLike[str] | None = None,
        offline: bool = False,
    ) -> None:
        if not client_id:
            raise ConfigCredentialsInvalid("Client ID is not specified")
        if not client_secret:
            raise ConfigCredentialsInvalid("Client secret is not specified")
        self._client_id = client_id
        self._client_secret = client_secret
        self._logger = _checked_logger(logger)
        self._refresh_interval_second = 0.0
        self._session_duration_second = 0.0
        self._default_timeout_second = 0.0
        self._tracking_interval_second = 0.0
        self._environment: str | None = None
        self._top_level_domain = ""
        self._multi_threading = False
        self._network_domain = _clean_network_domain(network_domain)
        if max_visitors.__class__ is bool or not isinstance(max_visitors, int) or max_visitors < 1:
            raise ConfigException(f"max_visitors must be an integer of at least 1, not {max_visitors!r}")
        self._max_visitors = max_visitors
        self._configuration_path = os.fspath(configuration_path) if configuration_path is not None else None
        self._offline = bool(offline)
        self.set_refresh_interval_minute(refresh_interval_minute)
        self.set_session_duration_minute(session_duration_minute)
        self.set_default_timeout_millisecond(default_timeout_millisecond)
        self.set_tracking_interval_millisecond(tracking_interval_millisecond)
        self.set_environment(environment)
        self.set_top_level_domain(top_level_domain)
        if multi_threading:
            self.set_multi_threading(multi_threading)

    # -- read-only properties -------------------------------------------------------------
    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @property
    def refresh_interval_second(self) -> float:
        """Polling period of the configuration, in seconds."""
        return self._refresh_interval_second

    @property
    def session_duration_second(self) -> float:
        """How long an idle visitor is kept in memory, in seconds."""
        return self._session_duration_second

    @property
    def default_timeout_second(self) -> float:
        """Total timeout of a network call without its own ``timeout``, in seconds."""
        return self._default_timeout_second

    @property
    def tracking_interval_second(self) -> float:
        """Period of the tracking batches, in seconds (0.1 to 1)."""
        return self._tracking_interval_second

    @property
    def environment(self) -> str | None:
        return self._environment

    @property
    def top_level_domain(self) -> str:
        return self._top_level_domain

    @property
    def multi_threading(self) -> bool:
        """Deprecated and without effect; kept for compatibility."""
        return self._multi_threading

    @property
    def logger(self) -> Any:
        """The logger of the client's messages: the one given, else the ``kameleoon`` logger."""
        return self._logger if self._logger is not None else _log

    @property
    def network_domain(self) -> str | None:
        """The back end: ``None`` (vendor hosts), a bare domain, or a base URL with a scheme."""
        return self._network_domain

    @property
    def max_visitors(self) -> int:
        """Maximum number of visitors kept in memory."""
        return self._max_visitors

    @property
    def configuration_path(self) -> str | None:
        """A configuration document active from the start (JSON file), or ``None``."""
        return self._configuration_path

    @property
    def offline(self) -> bool:
        """``True``: no network at all (configuration from ``configuration_path`` only)."""
        return self._offline

    # -- setters (same validation as the constructor) --------------------------------------
    def set_refresh_interval_minute(self, value: float) -> None:
        self._refresh_interval_second = _seconds(
            value, _DEFAULT_REFRESH_MINUTES, 60, "refresh_interval_minute"
        )

    def set_session_duration_minute(self, value: float) -> None:
        self._session_duration_second = _seconds(
            value, _DEFAULT_SESSION_MINUTES, 60, "session_duration_minute"
        )

    def set_default_timeout_millisecond(self, value: float) -> None:
        self._default_timeout_second = _seconds(
            value, _DEFAULT_TIMEOUT_MS, 0.001, "default_timeout_millisecond"
        )

    def set_tracking_interval_millisecond(self, value: int) -> None:
        if not _is_number(value):
            _log.warning(
                "tracking_interval_millisecond must be a number, %r given: the default is used", value
            )
            value = _DEFAULT_TRACKING_MS
        clamped = min(max(value, _MIN_TRACKING_MS), _MAX_TRACKING_MS)
        if clamped != value:
            _log.warning("tracking_interval_millisecond %r is clamped to %r", value, clamped)
        self._tracking_interval_second = clamped / 1000

    def set_environment(self, value: str | None) -> None:
        given: object = value  # checked at run time: the annotation is not enforced
        if given is not None and not isinstance(given, str):
            _log.warning("environment must be a string, %r given: no environment is used", given)
            value = None
        self._environment = value

    def set_top_level_domain(self, value: str) -> None:
        self._top_level_domain = _clean_top_level_domain(value)

    def set_multi_threading(self, value: bool) -> None:
        _log.warning("multi_threading is deprecated and has no effect")
        self._multi_threading = value

    def set_logger(self, logger: logging.Logger | None) -> None:
        self._logger = _checked_logger(logger)

    def __repr__(self) -> str:
        return (
            f"KameleoonClientConfig(client_id={self._client_id!r}, environment={self._environment!r}, "
            f"network_domain={self._network_domain!r})"
        )

    # -- YAML --------------------------------------------------------------------------------
    @staticmethod
    def read_from_yaml(path: str = DEFAULT_CONFIG_PATH) -> KameleoonClientConfig:
        """Builds a configuration from a YAML file.

        Raises :class:`ConfigFileNotFound` when the file does not exist, :class:`ConfigException`
        when it is not a YAML mapping, and :class:`ConfigCredentialsInvalid` when
        ``client_id``/``client_secret`` is explicitly empty. Values of the wrong type are
        ignored with a warning (the default applies).
        """
        return _config_from_mapping(_load_yaml(path))


def _load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml  # deferred: only YAML users pay for the import

    path = os.fspath(path)  # a str or path-like only (an int would be taken for a file descriptor)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigFileNotFound(f"configuration file {path!r} cannot be read: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigException(f"configuration file {path!r} is not UTF-8 text: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigException(f"configuration file {path!r} is not valid YAML: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigException(f"configuration file {path!r} must hold a mapping")
    return doc


# YAML key -> accepted types (bool is excluded from numbers explicitly below).
_YAML_KEYS: dict[str, tuple[type, ...]] = {
    "refresh_interval_minute": (int, float),
    "session_duration_minute": (int, float),
    "default_timeout_millisecond": (int,),
    "tracking_interval_millisecond": (int,),
    "environment": (str,),
    "top_level_domain": (str,),
    "multi_threading": (bool,),
    "network_domain": (str,),
    "max_visitors": (int,),
    "configuration_path": (str,),
    "offline": (bool,),
}


def config_from_yaml(path: str | os.PathLike[str], overrides: dict[str, Any]) -> KameleoonClientConfig:
    """:meth:`KameleoonClientConfig.read_from_yaml` with ``overrides`` (constructor keywords)
    taking the place of the file's values."""
    return _config_from_mapping(_load_yaml(path), overrides)


def _config_from_mapping(
    doc: dict[str, Any], overrides: dict[str, Any] | None = None
) -> KameleoonClientConfig:
    kwargs: dict[str, Any] = {}
    for key, types in _YAML_KEYS.items():
        if key not in doc:
            continue
        value = doc[key]
        if isinstance(value, types) and (bool not in types) == (not isinstance(value, bool)):
            kwargs[key] = value
        else:
            _log.warning("configuration key %r has an invalid value %r: ignored", key, value)
    client_id = doc.get("client_id", "1") if "client_id" in doc else "1"
    client_secret = doc.get("client_secret", "2") if "client_secret" in doc else "2"
    return KameleoonClientConfig(
        str(client_id or ""), str(client_secret or ""), **{**kwargs, **(overrides or {})}
    )
