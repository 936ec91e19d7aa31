"""Acknowledged events survive ``kill -9`` of the server (a real subprocess), on both back ends."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from kameleoon_server.storage import Storage

from .conftest import database_url, query
from .serve_process import ServerProcess


def sender(base: str, worker: int, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=5) as client:
        for seq in range(100_000):
            if stop.is_set():
                return
            nonces = [f"W{worker:02d}S{seq:06d}L{i:02d}" for i in range(20)]
            body = "\n".join(f"nonce={n}&eventType=activity&visitorCode=crash-{worker}" for n in nonces)
            try:
                r = client.post(
                    "/visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode=crash&bodyUa=true", content=body
                )
            except httpx.HTTPError:
                return  # the server died under us: this batch was never acknowledged
            if r.status_code == 204:
                acked.extend(nonces)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_events_survive_kill_9(new_storage: Callable[..., Storage]) -> None:
    storage = new_storage()
    server = ServerProcess("--db", database_url(storage))
    try:
        r = server.admin("POST", "/api/sites", {"code": "crash", "settings": {"data_api_auth": "optional"}})
        assert r.status_code == 201
        acked: list[str] = []
        stop = threading.Event()
        workers = [threading.Thread(target=sender, args=(server.base, w, acked, stop)) for w in range(4)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 20
        while len(acked) < 2000 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.proc.pid, signal.SIGKILL)  # while requests are still in flight
        server.proc.wait(10)
        stop.set()
        for w in workers:
            w.join(10)
    finally:
        server.stop(signal.SIGKILL)
    assert len(acked) >= 2000
    stored = {row[0] for row in query(storage, "SELECT nonce FROM events")}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    again = ServerProcess("--db", database_url(storage))  # the server restarts on the same data
    try:
        counts = again.admin("GET", "/api/sites/crash/events/summary").json()
        assert counts[0]["events"] >= len(set(acked))
    finally:
        again.stop()
