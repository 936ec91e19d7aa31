"""The ``kameleoon`` command: ``serve --demo`` in a subprocess, admin subcommands over HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kameleoon_server import cli
from kameleoon_server.storage import Storage
from kameleoon_server.storage._pg_schema import MIGRATIONS as PG_MIGRATIONS
from kameleoon_server.storage._schema import MIGRATIONS as SQLITE_MIGRATIONS

from .conftest import ADMIN_TOKEN, MINIMAL_DATAFILE, LiveServer, database_url
from .serve_process import ServerProcess


def run(capsys: pytest.CaptureFixture[str], live: LiveServer, *args: str) -> Any:
    code = cli.main([*args, "--url", live.base_url, "--admin-token", ADMIN_TOKEN])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out) if out.strip() else None


def test_demo_serve_is_idempotent_and_prints_site_credentials_and_snippet(tmp_path: Path) -> None:
    banners = []
    for _ in range(2):
        server, banner, base = _demo(tmp_path)
        try:
            doc = httpx.get(f"{base}/demo").json()
        finally:
            server.stop()
        assert [f["featureKey"] for f in doc["featureFlags"]] == [
            "new_checkout",
            "welcome_banner",
            "recommendations",
        ]
        assert {r["type"] for f in doc["featureFlags"] for r in f["rules"]} == {
            "EXPERIMENTATION",
            "TARGETED_DELIVERY",
        }
        types = {v["type"] for f in doc["featureFlags"] for var in f["variations"] for v in var["variables"]}
        assert types == {"STRING", "NUMBER", "BOOLEAN", "JSON"}
        assert doc["configuration"]["realTimeUpdate"] is True  # the demo shows streaming
        banners.append(banner[banner.index("demo site code") :])
    assert banners[0] == banners[1]  # same site, same credentials after a restart
    creds = dict(re.findall(r"demo (client id|client secret): (\S+)", banners[0]))
    snippet = banners[0][banners[0].index("from kameleoon import") :].splitlines()
    assert len(snippet) == 5
    client_id, secret = creds["client id"], creds["client secret"]
    assert f'KameleoonClientConfig("{client_id}", "{secret}", ' in snippet[1]
    assert 'network_domain="http://HOST"' in snippet[1]
    assert snippet[2] == 'client = KameleoonClientFactory.create("demo", config)'


def _demo(data_dir: Path) -> tuple[ServerProcess, str, str]:
    server = ServerProcess("--data-dir", str(data_dir), "--demo")
    last = "print(client.get_feature_variation_key"
    deadline = time.monotonic() + 10
    while not any(line.startswith(last) for line in server.output) and time.monotonic() < deadline:
        time.sleep(0.01)
    banner = "".join(server.output)
    assert last in banner, banner
    return server, re.sub(r"127\.0\.0\.1:\d+", "HOST", banner), server.base


def test_migrate_brings_a_database_to_the_current_schema(
    new_storage: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
) -> None:
    url = database_url(new_storage())
    latest = len(PG_MIGRATIONS if url.startswith("postgresql:") else SQLITE_MIGRATIONS)
    for _ in range(2):  # the second run has nothing to do
        assert cli.main(["migrate", "--db", url]) == 0
        assert capsys.readouterr().out.strip() == f"schema version {latest}"


def test_workers_need_postgresql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--data-dir", str(tmp_path), "--workers", "2", "--port", "0"]) == 2
    assert "--workers needs PostgreSQL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--token-ttl", "0", "must be at least 61 seconds"),
        ("--token-ttl", "60", "must be at least 61 seconds"),
        ("--token-ttl", "soon", "'soon' is not an integer"),
        ("--workers", "0", "must be at least 1"),
        ("--max-lines", "-5", "must be at least 1"),
        ("--max-body-mb", "0", "must be more than 0"),
        ("--max-body-mb", "-1", "must be more than 0"),
        ("--max-body-mb", "nan", "must be more than 0"),
        ("--max-body-mb", "big", "'big' is not a number"),
        ("--port", "99999", "must be a port number"),
        ("--log-level", "loud", "invalid choice: 'loud'"),
    ],
)
def test_serve_refuses_unusable_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    """A token lifetime of 60 s or less would make every SDK call fetch a token (0: every token
    refused), so the command refuses it instead of serving."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--data-dir", str(tmp_path), "--port", "0", option, value])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_explains_an_unusable_data_directory_or_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data directory that is a file, or a database file that is not SQLite, is reported by
    name (exit status 2), not by a traceback."""
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    assert cli.main(["serve", "--data-dir", str(a_file), "--port", "0"]) == 2
    assert f"cannot use {a_file} as the data directory" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kameleoon.db").write_bytes(b"this is not a database" * 100)
    assert cli.main(["serve", "--data-dir", str(broken), "--port", "0"]) == 2
    assert f"{broken / 'kameleoon.db'} is not a usable SQLite database" in capsys.readouterr().err


def test_admin_commands(live: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    created = run(capsys, live, "sites", "create", "--code", "clisite", "--name", "CLI")
    assert created["site"]["code"] == "clisite"
    path = tmp_path / "datafile.json"
    path.write_text(json.dumps(MINIMAL_DATAFILE))
    run(capsys, live, "config", "import", "clisite", str(path))
    flags = run(capsys, live, "flags", "list", "clisite")
    assert [f["key"] for f in flags] == ["new_checkout", "banner"]
    rules = run(capsys, live, "rules", "list", "clisite", "new_checkout")
    rule_id = str(rules[0]["id"])
    run(capsys, live, "rules", "set-exposition", "clisite", "new_checkout", rule_id, "0.3")
    assert live.http.get("/clisite").json()["featureFlags"][0]["rules"][0]["exposition"] == 0.3
    run(capsys, live, "flags", "create", "clisite", "promo", "--variations", "off,on,gold")
    added = run(capsys, live, "rules", "add", "clisite", "promo", "--split", "off=0.5,gold=0.5")
    assert [v["variation_key"] for v in added["variations"]] == ["off", "gold"]
    run(capsys, live, "flags", "enable", "clisite", "promo")
    assert live.http.get("/clisite").json()["featureFlags"][2]["environmentEnabled"] is True
    run(capsys, live, "remote-data", "set", "clisite", "user-1", '{"warehouseAudiences": {"a": 1}}')
    assert run(capsys, live, "remote-data", "get", "clisite", "user-1") == {"warehouseAudiences": {"a": 1}}
    assert "events_stored" in run(capsys, live, "stats")


def test_admin_command_errors_are_reported(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["flags", "list", "nope", "--url", live.base_url, "--admin-token", ADMIN_TOKEN])
    assert code == 1 and "HTTP 404" in capsys.readouterr().err
    code = cli.main(["sites", "list", "--url", live.base_url, "--admin-token", "wrong"])
    assert code == 1 and "HTTP 401" in capsys.readouterr().err


def test_migrate_and_serve_report_unusable_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that cannot be opened or is not SQLite, a data directory that is a file and a
    port in use are reported in one line (no traceback)."""
    import socket

    assert cli.main(["migrate", "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    assert cli.main(["migrate", "--db", f"sqlite:///{broken}"]) == 2
    assert "is not a usable SQLite database" in capsys.readouterr().err
    unopenable = tmp_path / "unopenable.db"
    unopenable.mkdir()  # (as a read-only directory would, opening fails before any read)
    assert cli.main(["migrate", "--db", f"sqlite:///{unopenable}"]) == 2
    assert f"error: cannot open {unopenable}" in capsys.readouterr().err
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert cli.main(["migrate", "--data-dir", str(a_file)]) == 1
    assert f"cannot use {a_file} as the data directory" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert cli.main(["serve", "--data-dir", str(tmp_path / "d"), "--port", port]) == 2
    assert "error: cannot listen on 127.0.0.1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "import", "shop", "/no/such/file.json"], "error: cannot read /no/such/file.json"),
        (["remote-data", "set", "shop", "k", "{bad"], "error: the value is not valid JSON"),
        (["api", "GET", "relative"], "error: the path must start with '/'"),
        (["rules", "add", "shop", "f", "--split", "off=abc"], "error: split entry 'off=abc'"),
        (["rules", "set-exposition", "shop", "f", "3", "nan"], "'nan' is not a finite number"),
        (["stats", "--url", "notaurl"], "error: --url must start with http:// or https://"),
    ],
)
def test_admin_commands_report_bad_local_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, bad JSON, a bad split or number, a relative path or a URL without a
    scheme is reported with exit status 2 before any request (no server runs here)."""
    args = [*argv, "--admin-token", "t"]
    if "--url" not in argv:
        args += ["--url", "http://127.0.0.1:9"]
    try:
        status = cli.main(args)
    except SystemExit as exited:  # argparse's own usage errors
        status = int(exited.code or 0)
    assert status == 2
    assert message in capsys.readouterr().err
