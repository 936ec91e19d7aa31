"""Django integration: add ``"kameleoon.integrations.django"`` to ``INSTALLED_APPS``.

The app creates the client when Django starts (``AppConfig.ready``) from the ``KAMELEOON``
setting, and :class:`KameleoonMiddleware` gives each request its visitor code and keeps the
``kameleoonVisitorCode`` cookie. See docs/django.md. Django itself is not a dependency of the
SDK: this package imports it only when Django loads the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kameleoon._client import KameleoonClient

__all__ = ["get_client"]


def get_client() -> KameleoonClient:
    """The client created at start-up by the app (raises ``RuntimeError`` before that)."""
    from django.apps import apps

    try:
        config = apps.get_app_config("kameleoon")
    except LookupError:
        config = None
    client: KameleoonClient | None = getattr(config, "client", None)
    if client is None:
        raise RuntimeError("the kameleoon app has not created its client yet (is it in INSTALLED_APPS?)")
    return client
