"""A warning about lost data, logged at most once a period (the loss itself is counted)."""

from __future__ import annotations

import logging
import time

__all__ = ["DropLog"]


class DropLog:
    """Logs a warning about lost data at most once per ``period`` seconds."""

    def __init__(self, log: logging.Logger, period: float = 60.0) -> None:
        self._log = log
        self._period = period
        self._last = -period

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self._period:
            self._last = now
            self._log.warning(message, *args)
