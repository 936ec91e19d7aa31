"""Exceptions raised by the SDK.

Every exception derives from :class:`KameleoonError`, and every message starts with
``"Kameleoon error: "``::

    KameleoonError
    ├── ConfigException
    │   ├── ConfigFileNotFound          the YAML configuration file does not exist
    │   └── ConfigCredentialsInvalid    client_id / client_secret missing or empty
    ├── SiteCodeIsEmpty                 KameleoonClientFactory.create("")
    ├── NotFoundError                   "<what> not found."
    │   ├── FeatureNotFound             unknown feature key
    │   ├── FeatureVariationNotFound    unknown variation key of a known feature
    │   └── FeatureVariableNotFound     unknown variable (or variation) key
    ├── FeatureError                    "Feature error: <what>"
    │   └── FeatureEnvironmentDisabled  the feature is off for the configured environment
    └── VisitorCodeInvalid              visitor code not a string, empty, or over 255 characters

Flag evaluation raises only ``VisitorCodeInvalid``, ``FeatureNotFound``,
``FeatureEnvironmentDisabled``, ``FeatureVariationNotFound`` and ``FeatureVariableNotFound``;
configuration objects raise ``ConfigException`` and its subclasses; the factory raises
``SiteCodeIsEmpty`` and, from its configuration, ``ConfigException`` and its subclasses (and
``TypeError`` for a ``config`` that is not a :class:`KameleoonClientConfig`).
"""

from __future__ import annotations

__all__ = [
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
]


class KameleoonError(Exception):
    """Base class of every exception raised by the SDK."""

    def __init__(self, message: str = "") -> None:
        super().__init__(f"Kameleoon error: {message}")


class ConfigException(KameleoonError):
    """The SDK configuration is unusable."""


class ConfigFileNotFound(ConfigException):
    """The YAML configuration file does not exist or cannot be read."""


class ConfigCredentialsInvalid(ConfigException):
    """``client_id`` or ``client_secret`` is missing or empty."""


class SiteCodeIsEmpty(KameleoonError):
    """The site code given to the factory is empty."""


class NotFoundError(KameleoonError):
    """Something looked up by key does not exist; the message ends with ``"not found."``."""

    def __init__(self, message: str = "") -> None:
        super().__init__(f"{message} not found.")


class FeatureNotFound(NotFoundError):
    """No feature flag with this key exists in the current configuration."""

    def __init__(self, feature_key: object = "") -> None:
        super().__init__(f"Feature flag Id: {feature_key}")


class FeatureVariationNotFound(NotFoundError):
    """The feature flag has no variation with this key."""

    def __init__(self, variation_key: object = "") -> None:
        super().__init__(f"Variation {variation_key}")


class FeatureVariableNotFound(NotFoundError):
    """The variation has no variable with this key (or the variation itself is missing)."""

    def __init__(self, variable_key: object = "") -> None:
        super().__init__(f"Feature variable {variable_key}")


class FeatureError(KameleoonError):
    """A feature flag cannot be evaluated."""

    def __init__(self, message: str = "") -> None:
        super().__init__(f"Feature error: {message}")


class FeatureEnvironmentDisabled(FeatureError):
    """The feature flag is disabled for the environment the SDK is configured with."""

    def __init__(self, feature_key: object = "", environment: str | None = None) -> None:
        where = "default environment" if environment is None else f"'{environment}' environment"
        super().__init__(f"Feature '{feature_key}' is disabled for {where}")
        self.feature_key = feature_key
        self.environment = environment


class VisitorCodeInvalid(KameleoonError):
    """The visitor code is not a string, is empty, or is longer than 255 characters."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(f"Visitor code not valid: {reason}")
