"""aiohttp transport for the ``*_async`` methods (only when the ``[async]`` extra is installed).

One ``aiohttp.ClientSession`` per running event loop, created on first use and closed when
the loop is garbage-collected or closed.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from kameleoon._network.transport import Request, Response, TransportError

__all__ = ["available", "send"]

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def _aiohttp() -> Any:
    """The aiohttp module, imported on first use (it is slow to import), or ``None``."""
    try:
        import aiohttp
    except ImportError:  # exercised when the [async] extra is missing
        return None
    return aiohttp


def available() -> bool:
    return _aiohttp() is not None


def _session() -> Any:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = _aiohttp().ClientSession(auto_decompress=True, trust_env=False)
        _sessions[loop] = session
    return session


async def send(request: Request) -> Response:
    """Performs ``request`` on the running loop; raises :class:`TransportError` on failure."""
    aiohttp = _aiohttp()
    assert aiohttp is not None
    try:
        async with _session().request(
            request.method,
            request.url,
            data=request.body,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=request.timeout),
            allow_redirects=False,
        ) as raw:
            body = await raw.read()
            return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
        raise TransportError(f"{request.method} {request.url}: {e}") from e


async def close_all() -> None:
    for session in list(_sessions.values()):
        await session.close()
