"""``kameleoon serve`` over HTTPS on several ports (what the 3.4.0 SDK's built-in host names need:
443 for configuration, tokens and the Data API, 8110 for the real-time stream)."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kameleoon_server import cli

trustme = pytest.importorskip("trustme")

ADMIN = "tls-admin-token"


class TlsServer:
    def __init__(self, proc: subprocess.Popen[str], urls: list[str], output: list[str]) -> None:
        self.proc, self.urls, self.output = proc, urls, output


@pytest.fixture
def ca(tmp_path: Path) -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(tmp_path: Path, ca: trustme.CA) -> Iterator[TlsServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cmd = [sys.executable, "-m", "kameleoon_server", "serve", "--port", "0", "--port", "0", "--demo"]
    cmd += ["--data-dir", str(tmp_path / "data"), "--admin-token", ADMIN, "--log-level", "warning"]
    cmd += ["--ssl-certfile", str(tmp_path / "server.pem"), "--ssl-keyfile", str(tmp_path / "server.key")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output: list[str] = []
    urls: list[str] = []
    for line in proc.stdout:
        output.append(line)
        if match := re.search(r"kameleoon server (\S+)", line):
            urls.append(match.group(1))
        if match := re.search(r"also listening on (.+)$", line):
            urls += match.group(1).split(", ")
        if line.startswith("demo client secret"):
            break
    try:
        assert len(urls) == 2, "".join(output)
        yield TlsServer(proc, urls, output)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()


def _client(ca: trustme.CA) -> httpx.Client:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return httpx.Client(verify=context, timeout=10)


def _wait_ready(http: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            http.get(f"{url}/api/health").raise_for_status()
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.05)


def test_every_port_serves_https_with_the_given_certificate(tls_server: TlsServer, ca: trustme.CA) -> None:
    assert all(url.startswith("https://127.0.0.1:") for url in tls_server.urls)
    with _client(ca) as http:
        for url in tls_server.urls:
            _wait_ready(http, url)
            config = http.get(f"{url}/demo", params={"environment": "production"})
            assert config.status_code == 200 and config.json()["featureFlags"]
        with http.stream("GET", f"{tls_server.urls[1]}/sse", params={"siteCode": "demo"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=5) as untrusting:  # a real TLS handshake
        untrusting.get(f"{tls_server.urls[0]}/api/health")


def test_the_sdk_decides_and_tracks_over_https(
    tls_server: TlsServer, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kameleoon = pytest.importorskip("kameleoon")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # what the SDK's TLS trusts
    output = "".join(tls_server.output)
    client_id = re.search(r"demo client id: (\S+)", output)
    secret = re.search(r"demo client secret: (\S+)", output)
    assert client_id and secret, output
    with _client(ca) as http:
        _wait_ready(http, tls_server.urls[0])
    config = kameleoon.KameleoonClientConfig(
        client_id.group(1), secret.group(1), network_domain=tls_server.urls[0]
    )
    client = kameleoon.KameleoonClientFactory.create("demo", config)
    try:
        assert client.wait_init() is True
        assert client.get_feature_variation_key("tls-visitor", "new_checkout") in {"off", "on", "express"}
    finally:
        kameleoon.KameleoonClientFactory.forget("demo")


def test_tls_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    base = ["serve", "--data-dir", str(tmp_path), "--port", "0"]
    assert cli.main([*base, "--ssl-certfile", str(cert)]) == 2
    assert "go together" in capsys.readouterr().err
    assert cli.main([*base, "--ssl-certfile", str(cert), "--ssl-keyfile", str(tmp_path / "nope.key")]) == 2
    assert "no such file" in capsys.readouterr().err
