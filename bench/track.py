"""Tracking throughput, and what tracking adds to a decision.

    python bench/track.py [--events 200000] [--visitors 20000] [--calls 100000]

1. Events per second the SDK hands to a loopback server. A minimal HTTP server runs in a
   subprocess on 127.0.0.1 (so it does not share the GIL with the SDK) and counts the tracking
   lines it receives. A client pointed at it (``tracking_interval_millisecond=100``) receives
   ``--events`` ``track_conversion`` calls over ``--visitors`` visitors from one thread.
   Printed: the caller-side rate (calls per second: what the application thread pays), the
   end-to-end rate (events received by the server per second, first call to last line
   received), the number of requests and lines per request.
2. The overhead of a tracked decision over an untracked one, on an offline client (no
   network) with one experiment flag: ``get_feature_variation_key`` (evaluates, records the
   exposure, schedules the visitor) against ``get_active_features`` (evaluates the same flag,
   records nothing), and the bookkeeping alone (recording the exposure and scheduling the
   visitor) measured directly. Printed: microseconds per call (median of 5 runs) and ratios.

Figures only: nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

DATAFILE: dict[str, Any] = {
    "configuration": {"realTimeUpdate": False, "consentType": "NOT_REQUIRED"},
    "customData": [],
    "featureFlags": [
        {
            "id": 1,
            "featureKey": "checkout",
            "defaultVariationKey": "off",
            "environmentEnabled": True,
            "variations": [{"key": "off"}, {"key": "on"}],
            "rules": [
                {
                    "id": 101,
                    "order": 1,
                    "type": "EXPERIMENTATION",
                    "exposition": 1.0,
                    "experimentId": 5001,
                    "respoolTime": None,
                    "segment": None,
                    "variationByExposition": [
                        {"variationKey": "off", "variationId": 7001, "exposition": 0.5},
                        {"variationKey": "on", "variationId": 7002, "exposition": 0.5},
                    ],
                }
            ],
        }
    ],
}

# The loopback server: counts tracking lines, serves the datafile and a token.
SERVER = r"""
import json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
DATAFILE = sys.argv[1].encode()
lock, counts = threading.Lock(), {"lines": 0, "requests": 0}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def answer(self, status, body=b"", kind=None):
        self.send_response(status)
        if kind: self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/oauth/token"):
            return self.answer(200, b'{"access_token":"t","expires_in":3600}', "application/json")
        with lock:
            counts["lines"] += body.count(b"\n") + 1 if body else 0
            counts["requests"] += 1
        self.answer(204)
    def do_GET(self):
        if self.path == "/count":
            with lock:
                return self.answer(200, json.dumps(counts).encode(), "application/json")
        self.answer(200, DATAFILE, "application/json")
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def counts(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/count", timeout=5) as answer:  # loopback only
        return json.loads(answer.read())  # type: ignore[no-any-return]


def throughput(events: int, visitors: int) -> None:
    import kameleoon

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, json.dumps(DATAFILE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        config = kameleoon.KameleoonClientConfig(
            "bench-id", "bench-secret", network_domain=base, tracking_interval_millisecond=100
        )
        client = kameleoon.KameleoonClientFactory.create("bench-track", config)
        client.wait_init()
        codes = [f"visitor-{n}" for n in range(visitors)]
        started = time.perf_counter()
        for n in range(events):
            client.track_conversion(codes[n % visitors], 1 + n % 50, 1.5)
        handed = time.perf_counter() - started
        while counts(base)["lines"] < events and time.perf_counter() - started < 120:
            time.sleep(0.01)
        total = time.perf_counter() - started
        received = counts(base)
        kameleoon.KameleoonClientFactory.forget("bench-track")
    finally:
        server.terminate()
        server.wait()
    print(f"tracking: {events} conversions over {visitors} visitors")
    print(f"  caller side : {events / handed:12,.0f} calls/s   ({handed * 1e6 / events:.2f} µs per call)")
    print(f"  end to end  : {received['lines'] / total:12,.0f} events/s  ({received['lines']} received)")
    per_request = received["lines"] / max(received["requests"], 1)
    print(f"  requests    : {received['requests']:12,d}           ({per_request:,.0f} lines per request)")


def per_call_us(function: Callable[[str], Any], codes: list[str], calls: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter_ns()
        for n in range(calls):
            function(codes[n % len(codes)])
        runs.append((time.perf_counter_ns() - started) / calls / 1000)
    return statistics.median(runs)


def overhead(calls: int, visitors: int) -> None:
    from kameleoon.testing import create_client

    client = create_client(DATAFILE)
    codes = [f"visitor-{n}" for n in range(visitors)]
    for code in codes:  # every visitor exists and has its assignment (steady state)
        client.get_feature_variation_key(code, "checkout")
    evaluate = client._cfg.flags["checkout"].decide  # the flag's generated rule loop
    store, tracker = client._store, client._tracker

    def decide(code: str) -> None:
        client.get_feature_variation_key(code, "checkout")

    def evaluation(code: str) -> None:
        evaluate(store.get(code), code)

    def evaluation_and_bookkeeping(code: str) -> None:
        client._decide(code, "checkout", None)  # the flag's lookup, evaluation, record and schedule

    all_in = per_call_us(decide, codes, calls)  # the tracker thread builds and sends lines meanwhile
    tracker.stop(5.0)  # from here on, only what the calling thread pays
    tracked = per_call_us(decide, codes, calls)
    untracked = per_call_us(client.get_active_features, codes, calls)
    alone = per_call_us(evaluation, codes, calls)
    bookkept = per_call_us(evaluation_and_bookkeeping, codes, calls)
    ratio, extra = tracked / untracked, bookkept - alone
    print(f"decision overhead: one experiment flag, {visitors} visitors, {calls} calls x 5 runs (median)")
    print(f"  get_active_features, untracked           : {untracked:7.2f} µs")
    print(f"  get_feature_variation_key, caller side   : {tracked:7.2f} µs   x{ratio:.2f} untracked")
    print(f"  get_feature_variation_key, all in        : {all_in:7.2f} µs   (lines built and sent meanwhile)")
    print(f"  evaluation alone                         : {alone:7.2f} µs")
    print(f"  lookup + evaluation + record + schedule  : {bookkept:7.2f} µs   bookkeeping {extra:.2f} µs")
    print(f"  bookkeeping share of a tracked decision  : {extra / tracked:.0%} (caller side)")


def main() -> None:
    logging.getLogger("kameleoon").setLevel(logging.CRITICAL)  # the offline client has no token
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    throughput(args.events, args.visitors)
    overhead(args.calls, args.visitors)


if __name__ == "__main__":
    main()
