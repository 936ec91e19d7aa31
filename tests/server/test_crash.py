"""Acknowledged events survive ``kill -9`` of the server (a real subprocess)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

TOKEN = "crash-admin-token"


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.proc, self.base, self._drain = _start(data_dir)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(10)
        self._drain.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _start(data_dir: Path) -> tuple[subprocess.Popen[str], str, threading.Thread]:
    cmd = [
        sys.executable,
        "-m",
        "kameleoon_server",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--admin-token",
        TOKEN,
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if match := re.search(r"kameleoon server (http://\S+)", line):
            drain = threading.Thread(target=proc.stdout.read, daemon=True)  # keep the pipe drained
            drain.start()
            base = match.group(1)
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        return proc, base, drain
                except httpx.HTTPError:
                    time.sleep(0.05)
        assert time.monotonic() < deadline
    raise AssertionError("server did not start")


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
def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    server = Server(tmp_path)
    base = server.base
    try:
        r = httpx.post(
            f"{base}/api/sites",
            json={"code": "crash", "settings": {"data_api_auth": "optional"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 201
        acked: list[str] = []
        stop = threading.Event()
        workers = [threading.Thread(target=sender, args=(base, w, acked, stop)) for w in range(4)]
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
    conn = sqlite3.connect(tmp_path / "kameleoon.db")
    stored = {row[0] for row in conn.execute("SELECT nonce FROM events")}
    conn.close()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    again = Server(tmp_path)  # the server restarts on the same data
    try:
        counts = httpx.get(
            f"{again.base}/api/sites/crash/events/summary", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        assert counts[0]["events"] >= len(set(acked))
    finally:
        again.stop()
