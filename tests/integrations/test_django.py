"""The Django app (client created in AppConfig.ready) and the middlewares, with Django's test client."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from tests.integrations.conftest import CONFIGURATION  # noqa: E402

SITE = "django-site"
_configuration = Path(tempfile.mkdtemp()) / "configuration.json"
_configuration.write_text(json.dumps(CONFIGURATION), encoding="utf-8")


def decide(request: Any) -> HttpResponse:
    from kameleoon.integrations.django import get_client

    client = get_client()
    code = request.kameleoon_visitor_code
    return HttpResponse(f"{code}:{client.get_feature_variation_key(code, 'new_checkout')}")


def view_cookies(request: Any) -> HttpResponse:
    return HttpResponse(json.dumps(request.COOKIES))


urlpatterns = [path("decide", decide), path("cookies", view_cookies)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="kameleoon-tests",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["kameleoon.integrations.django"],
        MIDDLEWARE=["kameleoon.integrations.django.middleware.KameleoonMiddleware"],
        KAMELEOON={
            "SITE_CODE": SITE,
            "CLIENT_ID": "id",
            "CLIENT_SECRET": "secret",
            "OPTIONS": {
                "offline": True,
                "configuration_path": str(_configuration),
                "top_level_domain": "example.com",
            },
        },
    )
    django.setup()


def test_app_creates_the_client_at_start_up() -> None:
    """``ready()`` created the client through the factory, from the KAMELEOON setting."""
    from kameleoon import KameleoonClientFactory
    from kameleoon.integrations.django import get_client

    assert get_client() is KameleoonClientFactory.create(SITE)
    assert get_client().get_feature_list() == ["new_checkout"]


def test_middleware_gives_a_code_and_writes_the_cookie() -> None:
    """A first request gets a generated code, decides with it, and receives the cookie."""
    from django.test import Client

    response = Client().get("/decide")
    code, variation = response.content.decode().split(":")
    assert variation == "on"
    cookie = response.cookies["kameleoonVisitorCode"]
    assert cookie.value == code
    assert cookie["domain"] == "example.com"
    assert cookie["max-age"] == "32832000"


def test_middleware_keeps_an_existing_code() -> None:
    """A returning visitor keeps the code from its cookie."""
    from django.test import Client

    client = Client()
    client.cookies["kameleoonVisitorCode"] = "0123456789abcdef"
    response = client.get("/decide")
    assert response.content.decode() == "0123456789abcdef:on"
    assert response.cookies["kameleoonVisitorCode"].value == "0123456789abcdef"


def test_middleware_survives_cookies_it_cannot_hold() -> None:
    """Other cookies with names the standard library's cookie jar refuses, and a visitor-code
    cookie too long to be a code, do not fail the request: the visitor gets a new code."""
    from django.test import Client

    response = Client().get("/decide", HTTP_COOKIE=f"a b=1; x@y=2; kameleoonVisitorCode={'z' * 300}")
    assert response.status_code == 200
    code, variation = response.content.decode().split(":")
    assert len(code) == 16 and variation == "on"
    assert response.cookies["kameleoonVisitorCode"].value == code


def test_documented_wsgi_recipe_shows_the_code_to_django() -> None:
    """The documented recipe: the WSGI application wrapped by KameleoonWSGIMiddleware."""
    from wsgiref.util import setup_testing_defaults

    from django.core.wsgi import get_wsgi_application

    from kameleoon import KameleoonWSGIMiddleware
    from kameleoon.integrations.django import get_client

    application = KameleoonWSGIMiddleware(get_wsgi_application(), get_client())
    environ: dict[str, Any] = {"PATH_INFO": "/cookies", "HTTP_HOST": "testserver"}
    setup_testing_defaults(environ)
    environ["HTTP_HOST"] = "testserver"
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    body = b"".join(application(environ, start_response))
    assert captured["status"].startswith("200")
    cookies = json.loads(body)
    set_cookie = [v for k, v in captured["headers"] if k == "Set-Cookie"]
    assert any(v.startswith(f"kameleoonVisitorCode={cookies['kameleoonVisitorCode']}") for v in set_cookie)


def test_get_client_without_the_app_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the app in INSTALLED_APPS, the documented RuntimeError (not Django's LookupError)."""
    from django.apps import apps

    from kameleoon.integrations.django import get_client

    def missing(label: str) -> None:
        raise LookupError(f"No installed app with label '{label}'.")

    monkeypatch.setattr(apps, "get_app_config", missing)
    with pytest.raises(RuntimeError, match="INSTALLED_APPS"):
        get_client()


def test_options_apply_on_top_of_a_config_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``CONFIG_PATH`` and ``OPTIONS`` together: the file's values, with the options on top."""
    from django.apps import apps
    from django.test import override_settings

    from kameleoon import KameleoonClientFactory

    path = tmp_path / "client.yaml"
    path.write_text("client_id: from-file\nclient_secret: s\nenvironment: staging\n", encoding="utf-8")
    app = apps.get_app_config("kameleoon")
    monkeypatch.setattr(app, "client", app.client)  # restored after the test
    options = {"environment": "production", "offline": True}
    with override_settings(
        KAMELEOON={"SITE_CODE": "opts-site", "CONFIG_PATH": str(path), "OPTIONS": options}
    ):
        app.ready()
    try:
        settings_used = app.client._settings
        assert (settings_used.client_id, settings_used.environment) == ("from-file", "production")
    finally:
        KameleoonClientFactory.forget("opts-site")


@pytest.mark.parametrize(
    "setting",
    [
        "site-code",
        {"SITE_CODE": "s", "OPTIONS": ["environment"]},
        {"SITE_CODE": "s", "CLIENT_ID": "a", "CLIENT_SECRET": "b", "OPTIONS": {"nope": 1}},
    ],
)
def test_unusable_settings_are_improperly_configured(setting: Any) -> None:
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    with override_settings(KAMELEOON=setting), pytest.raises(ImproperlyConfigured):
        apps.get_app_config("kameleoon").ready()
