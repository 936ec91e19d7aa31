"""The Django app that creates the client from the ``KAMELEOON`` setting.

::

    KAMELEOON = {
        "SITE_CODE": "a1b2c3d4e5",
        "CONFIG_PATH": "/etc/kameleoon/client-python.yaml",  # or "CLIENT_ID"/"CLIENT_SECRET"
        "OPTIONS": {"environment": "production"},  # any KameleoonClientConfig keyword
        "DEFAULT_VISITOR_CODE": None,  # optional, for KameleoonMiddleware
    }
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kameleoon._client import KameleoonClient
from kameleoon._config import DEFAULT_CONFIG_PATH, KameleoonClientConfig, config_from_yaml
from kameleoon._factory import KameleoonClientFactory

__all__ = ["KameleoonAppConfig"]


class KameleoonAppConfig(AppConfig):  # type: ignore[misc]
    """Creates the client in :meth:`ready`; read it with ``kameleoon.integrations.django.get_client()``."""

    name = "kameleoon.integrations.django"
    label = "kameleoon"
    verbose_name = "Kameleoon"
    client: KameleoonClient | None = None

    def ready(self) -> None:
        options: dict[str, Any] = getattr(settings, "KAMELEOON", None) or {}
        if not isinstance(options, dict):
            raise ImproperlyConfigured("settings.KAMELEOON must be a dict (SITE_CODE, CONFIG_PATH, ...)")
        site_code = options.get("SITE_CODE")
        if not site_code:
            raise ImproperlyConfigured("settings.KAMELEOON['SITE_CODE'] is required")
        extra = options.get("OPTIONS") or {}
        if not isinstance(extra, dict):
            raise ImproperlyConfigured(
                "settings.KAMELEOON['OPTIONS'] must be a dict of KameleoonClientConfig keywords"
            )
        path = options.get("CONFIG_PATH", DEFAULT_CONFIG_PATH)
        try:
            if "CLIENT_ID" in options or "CLIENT_SECRET" in options:
                config = KameleoonClientConfig(
                    options.get("CLIENT_ID", ""), options.get("CLIENT_SECRET", ""), **extra
                )
            elif extra:  # the file's values, with OPTIONS on top
                config = config_from_yaml(path, extra)
            else:  # the factory reads the file
                config = None
        except TypeError as e:  # an OPTIONS key that is not a keyword of KameleoonClientConfig
            raise ImproperlyConfigured(f"settings.KAMELEOON['OPTIONS']: {e}") from e
        self.client = KameleoonClientFactory.create(site_code, config, path)
