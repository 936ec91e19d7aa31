"""aiohttp transport for the ``*_async`` methods (only when the ``[async]`` extra is installed).

One ``aiohttp.ClientSession`` per running event loop, created on first use. It is closed when
the loop shuts down its asynchronous generators (``asyncio.run`` and every mainstream runner
do): a small generator bound to the loop holds the session and closes it in its ``finally``.
Sessions of loops left without that step are closed at interpreter exit, or, once their loop
is closed, when a session is made for another loop (a loop per call must not pile them up).
A forked child never touches its parent's sessions.

``use_aiohttp(False)`` is a documented private hook (for tests and for applications that
want every ``*_async`` call to run the synchronous twin in a worker thread).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from kameleoon._network.transport import MAX_RESPONSE_BYTES, Request, Response, TransportError

__all__ = ["available", "send", "use_aiohttp"]

_enabled = True
_lock = threading.Lock()
# loop -> (session, keeper generator); the keeper closes the session when the loop shuts down
_sessions: dict[asyncio.AbstractEventLoop, tuple[Any, AsyncIterator[None]]] = {}
_abandoned: list[Any] = []
_EXIT_CLOSE_SECONDS = 1.0  # how long exit waits for a loop on another thread to close its session


def _aiohttp() -> Any:
    """The aiohttp module, imported on first use (it is slow to import), or ``None``."""
    try:
        import aiohttp
    except ImportError:  # exercised when the [async] extra is missing
        return None
    return aiohttp


def available() -> bool:
    """``True`` when ``*_async`` calls use aiohttp (else they run the sync call in a thread)."""
    return _enabled and _aiohttp() is not None


def use_aiohttp(enabled: bool) -> None:
    """Private hook: ``False`` makes :func:`available` false even when aiohttp is installed."""
    global _enabled
    _enabled = enabled


async def _keeper(loop: asyncio.AbstractEventLoop, session: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with _lock:
            if _sessions.get(loop, (None,))[0] is session:
                del _sessions[loop]
        await session.close()


async def _session() -> Any:
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    session = _aiohttp().ClientSession(auto_decompress=True, trust_env=False)
    keeper = _keeper(loop, session)
    await keeper.__anext__()  # first iteration: the loop now finalizes it at shutdown
    with _lock:
        _sessions[loop] = (session, keeper)
        # Loops closed without shutting down (``loop.close()`` alone) never finalize their
        # keeper: their sessions go now, or a loop per call would make the table grow forever.
        closed = [(other, entry) for other, entry in _sessions.items() if other.is_closed()]
        for other, _ in closed:
            del _sessions[other]
    for _, (stale, _) in closed:
        _close_synchronously(stale)
    return session


async def send(request: Request) -> Response:
    """Performs ``request`` on the running loop; raises :class:`TransportError` on failure."""
    aiohttp = _aiohttp()
    assert aiohttp is not None
    try:
        session = await _session()
        async with session.request(
            request.method,
            request.url,
            data=request.body,
            headers=dict(request.headers),
            # aiohttp rounds deadlines above ``ceil_threshold`` (5 s) up to a whole second
            timeout=aiohttp.ClientTimeout(total=request.timeout, ceil_threshold=math.inf),
            allow_redirects=False,
        ) as raw:
            body = await _read_body(raw)
            return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
        raise TransportError(f"{request.method} {request.url}: {e}") from e


async def _read_body(raw: Any) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in raw.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ValueError(f"the response body exceeds {MAX_RESPONSE_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _close_leftovers() -> None:
    """At exit: sessions of loops that never shut down. An idle loop is run to close them
    properly, a loop running on another thread is asked to (for a second at most); for a
    closed loop, aiohttp's synchronous close marks them closed (their sockets go with the
    process). One session that fails to close does not keep the others open."""
    with _lock:
        entries = list(_sessions.items())
        _sessions.clear()
    for loop, (session, _) in entries:
        with contextlib.suppress(Exception):
            _close_on(loop, session)


def _close_on(loop: asyncio.AbstractEventLoop, session: Any) -> None:
    if loop.is_running():
        asyncio.run_coroutine_threadsafe(session.close(), loop).result(_EXIT_CLOSE_SECONDS)
    elif not loop.is_closed():
        loop.run_until_complete(session.close())
    else:
        _close_synchronously(session)


def _close_synchronously(session: Any) -> None:
    """Marks the session of a closed loop closed (its sockets are released with it)."""
    connector = session.connector
    if connector is not None and not connector.closed:
        connector._close()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _abandoned.extend(_sessions.values())  # the parent's sockets: never used nor closed here
    _sessions.clear()


atexit.register(_close_leftovers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
