"""A client survives ``os.fork()`` (gunicorn --preload, uWSGI, Celery prefork).

The child restarts its background work on its own connections: it receives configuration
updates and delivers its tracking. Data collected before the fork is the parent's to send, so
nothing is sent twice.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import eventually
from .fault_server import FaultServer, datafile

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
CHILD_GOAL = 4242


def child_main(client: Any) -> dict[str, Any]:
    """Runs in the child: wait for the update, track, wait for the delivery, report."""
    updated = eventually(lambda: client.get_feature_list() == ["flag_v2"], 10)
    client.track_conversion("child-visitor", CHILD_GOAL)
    sent = eventually(lambda: client._tracker.stats.lines_sent >= 1, 10)
    return {"updated": bool(updated), "sent": bool(sent), "features": client.get_feature_list()}


def in_child(
    target: Callable[[], dict[str, Any]], meanwhile: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """Forks: the child runs ``target`` and sends back the dict it returns while the parent
    runs ``meanwhile``; returns the child's dict (``{}`` when the child failed)."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        try:
            os.close(read_fd)
            os.write(write_fd, json.dumps(target()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        meanwhile()
        return dict(json.loads(os.read(read_fd, 4096) or b"{}"))
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)


def test_child_receives_updates_and_delivers_tracking(
    server: FaultServer, make_client: Callable[..., Any]
) -> None:
    server.config = datafile(1, real_time=True)
    client = make_client(tracking_interval_millisecond=200)
    assert eventually(lambda: server.open_streams == 1, 5)
    client.track_conversion("parent-visitor", 1)  # pending in the parent at fork time

    def meanwhile() -> None:
        assert eventually(lambda: server.open_streams == 2, 10)  # the child opened its own stream
        assert len(server.of("config")) >= 2  # and downloaded the configuration afresh
        server.config = datafile(2, real_time=True)
        server.push_update(int(time.time() * 1000))

    report = in_child(lambda: child_main(client), meanwhile)
    assert report == {"updated": True, "sent": True, "features": ["flag_v2"]}
    assert eventually(lambda: client.get_feature_list() == ["flag_v2"], 5)  # the parent too
    lines = server.tracking_lines()
    assert [line["visitorCode"] for line in lines if line.get("goalId") == str(CHILD_GOAL)] == [
        "child-visitor"
    ]
    assert eventually(lambda: [ln for ln in server.tracking_lines() if ln.get("goalId") == "1"], 5)
    assert len([line for line in server.tracking_lines() if line.get("goalId") == "1"]) == 1  # not twice


def test_child_of_a_polling_client_keeps_polling(
    server: FaultServer, make_client: Callable[..., Any]
) -> None:
    client = make_client(refresh_interval_minute=0.005)

    def child() -> dict[str, Any]:
        return {"updated": bool(eventually(lambda: client.get_feature_list() == ["flag_v2"], 10))}

    def meanwhile() -> None:
        server.config = datafile(2)

    assert in_child(child, meanwhile) == {"updated": True}


def test_nonces_after_a_fork_do_not_repeat_the_parents(
    server: FaultServer, make_client: Callable[..., Any]
) -> None:
    """Nonces are drawn from a buffer of random bytes: a child must not go on with the copy of
    its parent's buffer, or every worker of a pre-forked server would send the parent's next
    nonces again (events a collector de-duplicating by nonce would drop)."""
    client = make_client(tracking_interval_millisecond=100)
    client.track_conversion("before-fork", 1)
    assert eventually(lambda: client._tracker.stats.lines_sent >= 1, 5)  # the buffer is in use

    def child() -> dict[str, Any]:
        before = client._tracker.stats.lines_sent
        client.track_conversion("child-visitor", CHILD_GOAL)
        return {"sent": bool(eventually(lambda: client._tracker.stats.lines_sent > before, 10))}

    assert in_child(child, lambda: client.track_conversion("parent-visitor", 2)) == {"sent": True}
    assert eventually(lambda: any(line.get("goalId") == "2" for line in server.tracking_lines()), 5)
    lines = [line for line in server.tracking_lines() if line.get("goalId") in ("2", str(CHILD_GOAL))]
    assert len(lines) == 2 and lines[0]["nonce"] != lines[1]["nonce"]


def test_a_fork_while_a_client_is_being_created_leaves_the_factory_usable() -> None:
    """The factory's lock, held by a parent thread at the fork, is free in the child."""
    from kameleoon import KameleoonClientFactory

    with KameleoonClientFactory._lock:  # as a thread creating a client would hold it
        report = in_child(lambda: {"acquired": KameleoonClientFactory._lock.acquire(timeout=2)})
    assert report == {"acquired": True}


def test_a_fork_waits_for_a_thread_updating_a_visitor_record() -> None:
    """A thread half-way through changing a record (holding the store's data lock) finishes
    before the process is copied, so the child never keeps a half-updated record."""
    import threading

    from kameleoon.testing import create_client

    client = create_client({"featureFlags": []})
    store = client._store
    record: dict[str, str] = {"state": "consistent"}
    holding = threading.Event()

    def update() -> None:
        with store.data_lock:
            record["state"] = "half-updated"
            holding.set()
            time.sleep(0.3)
            record["state"] = "updated"

    writer = threading.Thread(target=update)
    writer.start()
    assert holding.wait(5)

    def child() -> dict[str, Any]:
        free = store.data_lock.acquire(timeout=2)
        return {"state": record["state"], "free": free}

    report = in_child(child)
    writer.join()
    assert report == {"state": "updated", "free": True}
    assert store.data_lock.acquire(timeout=2)  # the parent's lock was given back after the fork
    store.data_lock.release()
    client._close(timeout=0.5)
