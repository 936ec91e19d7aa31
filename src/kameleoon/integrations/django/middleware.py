"""``KameleoonMiddleware``: a visitor code per request, kept in the ``kameleoonVisitorCode`` cookie.

A native Django middleware (sync and async), an alternative to wrapping the WSGI application
with :class:`kameleoon.KameleoonWSGIMiddleware`. ``request.kameleoon_visitor_code`` holds the
code; the response (re)writes the cookie with the attributes the SDK uses, or expires it when
the visitor refused consent and the configuration manages the code.
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from kameleoon._cookies import COOKIE_NAME
from kameleoon.integrations.django import get_client
from kameleoon.integrations.wsgi import update_cookie, visitor_code

__all__ = ["KameleoonMiddleware"]


class KameleoonMiddleware:
    """Add ``"kameleoon.integrations.django.middleware.KameleoonMiddleware"`` to ``MIDDLEWARE``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        jar = self._before(request)
        return self._after(request, jar, self.get_response(request))

    async def _acall(self, request: Any) -> Any:
        jar = self._before(request)
        return self._after(request, jar, await self.get_response(request))

    def _before(self, request: Any) -> SimpleCookie:
        from django.conf import settings

        jar: SimpleCookie = SimpleCookie()
        sent = request.COOKIES.get(COOKIE_NAME)
        if sent is not None:  # only this cookie: other names may be ones SimpleCookie refuses
            jar[COOKIE_NAME] = sent
        default = (getattr(settings, "KAMELEOON", None) or {}).get("DEFAULT_VISITOR_CODE")
        request.kameleoon_visitor_code = visitor_code(get_client(), jar, default)
        return jar

    def _after(self, request: Any, jar: SimpleCookie, response: Any) -> Any:
        update_cookie(get_client(), request.kameleoon_visitor_code, jar)
        morsel = jar.get(COOKIE_NAME)
        if morsel is not None:
            response.cookies[COOKIE_NAME] = morsel.value
            for attribute in ("domain", "path", "max-age", "expires"):
                if morsel[attribute]:
                    response.cookies[COOKIE_NAME][attribute] = morsel[attribute]
        return response
