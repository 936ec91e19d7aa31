"""``kameleoon serve`` in a subprocess (for kill -9 and multi-instance tests)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

ADMIN_TOKEN = "process-admin-token"


class ServerProcess:
    """A server started with ``kameleoon serve --port 0 <args>``; ``base`` is its URL."""

    def __init__(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "kameleoon_server", "serve", "--port", "0", "--admin-token", ADMIN_TOKEN]
        cmd += ["--log-level", "warning", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        try:
            self.base = self._wait_started()
        except BaseException:  # a server that did not start in time is not left running
            self.proc.kill()
            self.proc.wait(30)
            raise
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def _wait_started(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            self.output.append(line)
            if match := re.search(r"kameleoon server (http://\S+)", line):
                self._drainer.start()
                base = match.group(1)
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                            return base
                    except httpx.HTTPError:
                        time.sleep(0.05)
            assert time.monotonic() < deadline
        raise AssertionError("server did not start:\n" + "".join(self.output))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # keeps the pipe from filling up
            self.output.append(line)

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=json, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)
        if self._drainer.is_alive():
            self._drainer.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
