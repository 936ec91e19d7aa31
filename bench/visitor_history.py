"""Server memory for `GET /visit/visitor` over a visitor history of long lines.

Starts `kameleoon serve` on a fresh data directory, stores ``--lines`` conversion lines of
``--line-kib`` KiB each for one visitor (one request each), then asks for that visitor's data
with every filter and prints how much the server's resident memory grew during that one answer
(Linux): its peak (``VmHWM``, reset through ``/proc/PID/clear_refs`` first), which counts the
database file's pages SQLite maps in (page cache the kernel can take back), and the peak of its
anonymous memory (``RssAnon``, sampled every millisecond), which it cannot. Then the answer's
time and size, and the events it holds.

    python bench/visitor_history.py                 # 150 lines of 1 MiB
    python bench/visitor_history.py --lines 40 --line-kib 4096
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from ingest import access_token, admin, start_server

ALL = "currentVisit=true&customData=true&page=true&experiment=true&conversion=true&staticData=true"
ALL += "&geolocation=true&maxNumberPreviousVisits=25&version=0"


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def sample_peak(pid: int, field: str, stop: threading.Event, peak: list[int]) -> None:
    """Keeps the highest value of a ``/proc/PID/status`` field in ``peak[0]`` until ``stop``."""
    while not stop.is_set():
        peak[0] = max(peak[0], status_kib(pid, field))
        time.sleep(0.001)


def post(url: str, body: bytes, token: str) -> None:
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 204, answer.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=150)
    parser.add_argument("--line-kib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_server(Path(data_dir), "normal", None)
        try:
            created = admin(base, "POST", "/api/sites", {"code": "history"})
            creds = created["credentials"]  # type: ignore[index]
            token = access_token(base, creds["client_id"], creds["client_secret"])
            events = f"{base}/visit/events?sdkName=PYTHON&sdkVersion=3.4.0&siteCode=history"
            pad = "x" * (args.line_kib * 1024)
            for n in range(args.lines):
                line = f"nonce=H{n}&eventType=conversion&goalId={n}&revenue=1.0&negative=false"
                post(events, f"{line}&pad={pad}&visitorCode=heavy".encode(), token)
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # the peak restarts from now
            before, anon_before = status_kib(proc.pid, "VmRSS"), status_kib(proc.pid, "RssAnon")
            stop, anon_peak = threading.Event(), [anon_before]
            sampler = threading.Thread(target=sample_peak, args=(proc.pid, "RssAnon", stop, anon_peak))
            sampler.start()
            url = f"{base}/visit/visitor?siteCode=history&visitorCode=heavy&{ALL}"
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(request) as answer:
                raw = answer.read()
            seconds = time.perf_counter() - started
            peak = status_kib(proc.pid, "VmHWM")
            stop.set()
            sampler.join()
            document = json.loads(raw)
            visits = [document.get("currentVisit") or {}, *document.get("previousVisits", [])]
            held = sum(len(v.get("conversionEvents", [])) for v in visits)
            stored_mib = args.lines * args.line_kib / 1024
            print(f"history: {args.lines} lines of {args.line_kib} KiB ({stored_mib:,.0f} MiB)")
            print(f"answer: {len(raw):,} bytes, {held} conversions, {seconds:.2f} s")
            anon = (anon_peak[0] - anon_before) / 1024
            print(f"server peak memory during the answer: +{(peak - before) / 1024:,.1f} MiB")
            print(f"  of which anonymous (not page cache): +{anon:,.1f} MiB")
            print(f"anonymous peak / history size: {anon / stored_mib:.2f}")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
