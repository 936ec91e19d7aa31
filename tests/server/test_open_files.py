"""``kameleoon serve`` and the open-file limit: the SSE streams it allows must not lock out
every other client (``_serve._open_files_for``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

resource = pytest.importorskip("resource")

PROBE = """
import logging, resource
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
from kameleoon_server._serve import _open_files_for
print(_open_files_for({streams}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _run(soft: int, hard: int, streams: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [sys.executable, "-c", PROBE.format(streams=streams)],
        preexec_fn=limit, capture_output=True, text=True, check=True,
    )  # fmt: skip


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip(f"needs a finite hard limit of 2048 or more, not {hard}")
    done = _run(1024, hard, 1000)
    assert done.stdout.split() == [str(hard), str(hard)]
    assert "WARNING" not in done.stderr


def test_a_limit_too_low_for_the_streams_is_reported() -> None:
    done = _run(256, 256, 1000)
    assert done.stdout.split() == ["256", "256"]
    assert "WARNING the open-file limit (256) leaves little beside --sse-max-connections 1000" in done.stderr
