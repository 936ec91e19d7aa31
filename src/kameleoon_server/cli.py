"""The ``kameleoon`` command: ``serve`` runs the server; the other commands use its admin API."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kameleoon_server._client import AdminClient, ApiFailure
from kameleoon_server._paths import default_data_dir, read_admin_token
from kameleoon_server.results import cli as results_cli

Command = Callable[[AdminClient, argparse.Namespace], Any]
DEFAULT_URL = "http://127.0.0.1:8000"


class _BadInput(Exception):
    """A local argument or file the command cannot use (reported, exit status 2)."""


def _number(text: str) -> float:
    """``float(text)``, or the argparse error that says it is not a number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _share(text: str) -> float:
    """An argparse type (and split shares): a finite number."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _split(text: str) -> list[dict[str, Any]]:
    """``on=0.5,off=0.5`` → split entries."""
    out = []
    for part in filter(None, text.split(",")):
        key, _, share = part.partition("=")
        try:
            exposition = _share(share or "1")
        except argparse.ArgumentTypeError as exc:
            raise _BadInput(f"split entry {part!r}: {exc}") from None
        out.append({"variation_key": key.strip(), "exposition": exposition})
    return out


def _json_text(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _BadInput(f"{what} is not valid JSON: {exc}") from None


def _json_file(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"cannot read {path}: {exc}") from None
    return _json_text(text, path)


def _api(c: AdminClient, a: argparse.Namespace) -> Any:
    if not a.path.startswith("/"):
        raise _BadInput(f"the path must start with '/', not {a.path!r}")
    return c.request(a.method.upper(), a.path, _json_text(a.body, "the body") if a.body else None)


def _rules(c: AdminClient, a: argparse.Namespace, *rest: str) -> str:
    return c.site_path(a.site, "flags", a.flag, "environments", a.env, "rules", *rest)


COMMANDS: dict[str, Command] = {
    "sites list": lambda c, a: c.request("GET", "/api/sites"),
    "sites create": lambda c, a: c.request("POST", "/api/sites", {"code": a.code, "name": a.name or ""}),
    "sites show": lambda c, a: c.request("GET", c.site_path(a.site)),
    "sites delete": lambda c, a: c.request("DELETE", c.site_path(a.site)),
    "flags list": lambda c, a: [
        {
            "key": f["key"],
            "id": f["id"],
            "variations": [v["key"] for v in f["variations"]],
            "enabled": sorted(k for k, e in f["environments"].items() if e["enabled"]),
        }
        for f in c.request("GET", c.site_path(a.site, "flags"))
    ],
    "flags show": lambda c, a: c.request("GET", c.site_path(a.site, "flags", a.flag)),
    "flags create": lambda c, a: c.request(
        "POST",
        c.site_path(a.site, "flags"),
        {
            "key": a.flag,
            "name": a.name or "",
            "default_variation_key": a.variations.split(",")[0],
            "variations": [{"key": k} for k in a.variations.split(",")],
        },
    ),
    "flags enable": lambda c, a: c.request(
        "PATCH", c.site_path(a.site, "flags", a.flag, "environments", a.env), {"enabled": True}
    ),
    "flags disable": lambda c, a: c.request(
        "PATCH", c.site_path(a.site, "flags", a.flag, "environments", a.env), {"enabled": False}
    ),
    "rules list": lambda c, a: c.request("GET", _rules(c, a)),
    "rules add": lambda c, a: c.request(
        "POST",
        _rules(c, a),
        {
            "type": a.type,
            "exposition": a.exposition,
            "variations": _split(a.split),
            "segment_id": a.segment,
        },
    ),
    "rules set-exposition": lambda c, a: c.request(
        "PATCH", _rules(c, a, str(a.rule)), {"exposition": a.exposition}
    ),
    "rules set-split": lambda c, a: c.request(
        "PATCH", _rules(c, a, str(a.rule)), {"variations": _split(a.split)}
    ),
    "rules delete": lambda c, a: c.request("DELETE", _rules(c, a, str(a.rule))),
    "config export": lambda c, a: c.request(
        "GET", c.site_path(a.site, "configuration") + f"?environment={a.env}"
    ),
    "config import": lambda c, a: c.request(
        "PUT",
        c.site_path(a.site, "configuration") + f"?environment={a.env}",
        _json_file(a.file),
    ),
    "remote-data set": lambda c, a: c.request(
        "PUT", c.site_path(a.site, "remote-data", a.key), _json_text(a.json, "the value")
    ),
    "remote-data get": lambda c, a: c.request("GET", c.site_path(a.site, "remote-data", a.key)),
    "remote-data delete": lambda c, a: c.request("DELETE", c.site_path(a.site, "remote-data", a.key)),
    "credentials create": lambda c, a: c.request("POST", c.site_path(a.site, "credentials")),
    "credentials list": lambda c, a: c.request("GET", c.site_path(a.site, "credentials")),
    "stats": lambda c, a: c.request("GET", "/api/stats"),
    "results": results_cli.run,
    "api": lambda c, a: _api(c, a),
}


def _at_least(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum`` (``why`` explains the bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{why}, not {value}")
        return value

    return parse


def _port(text: str) -> int:
    """An argparse type: a TCP port number (0 = any free port)."""
    value = _at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 0 to 65535, not {value}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more, not {text}")
    return value


def _mebibytes(text: str) -> float:
    """An argparse type: a finite number of MiB, more than 0 (and at most 1 TiB)."""
    value = _number(text)
    if not 0 < value <= 1024 * 1024:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1048576 MiB, not {text}")
    return value


# SDKs treat a token lasting 60 s or less as already expired: 3.4.0 fetches a new one for every
# call, and a lifetime of 0 or less is refused outright (protocol §4.2, §4.3).
_TOKEN_TTL = _at_least(61, " seconds (SDKs treat shorter-lived tokens as already expired)")


def _add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=_port,
        action="append",
        help="port (default 8000; 0 = any free port); repeat it to listen on several ports, "
        "e.g. --port 443 --port 8110 for the host names of the 3.4.0 SDK",
    )
    p.add_argument("--ssl-certfile", type=Path, help="serve HTTPS with this certificate (PEM, chain first)")
    p.add_argument("--ssl-keyfile", type=Path, help="the private key of --ssl-certfile (PEM)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        help="data directory (default $KAMELEOON_DATA_DIR, else $XDG_DATA_HOME/kameleoon-server,"
        " else ~/.local/share/kameleoon-server)",
    )
    where.add_argument("--db", help="database URL, e.g. sqlite:////var/lib/kameleoon/kameleoon.db")
    p.add_argument("--demo", action="store_true", help="create (once) and print a demo site")
    p.add_argument("--admin-token", help="admin API token (default $KAMELEOON_ADMIN_TOKEN, else generated)")
    p.add_argument(
        "--sync",
        choices=["normal", "full"],
        default="normal",
        help="SQLite synchronous mode: normal survives process crashes, full also power loss",
    )
    p.add_argument("--token-ttl", type=_TOKEN_TTL, default=7200, help="access token lifetime in seconds")
    p.add_argument("--max-body-mb", type=_mebibytes, default=16.0, help="tracking request body limit (MiB)")
    p.add_argument("--max-lines", type=_at_least(1), default=200_000, help="tracking lines per request limit")
    p.add_argument("--sse-max-connections", type=_at_least(0), default=1000)
    p.add_argument(
        "--request-timeout",
        type=_seconds,
        default=30.0,
        help="seconds a client has to send a whole request, head and body (default 30; 0 = no limit)",
    )
    p.add_argument("--workers", type=_at_least(1), default=1, help="server processes (PostgreSQL only)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    m = sub.add_parser("migrate", help="apply pending schema migrations to the database")
    m.add_argument("--db", help="database URL (default: the data directory's SQLite file)")
    m.add_argument("--data-dir", type=Path, help="data directory (when --db is not given)")


def _positional(p: argparse.ArgumentParser, names: str) -> None:
    for name in names.split():
        if name == "rule":
            p.add_argument(name, type=int)
        elif name == "exposition":
            p.add_argument(name, type=_share)
        else:
            p.add_argument(name)


_ARGS: dict[str, str] = {
    "sites show": "site",
    "sites delete": "site",
    "flags list": "site",
    "flags show": "site flag",
    "flags create": "site flag",
    "flags enable": "site flag",
    "flags disable": "site flag",
    "rules list": "site flag",
    "rules add": "site flag",
    "rules set-exposition": "site flag rule exposition",
    "rules set-split": "site flag rule split",
    "rules delete": "site flag rule",
    "config export": "site",
    "config import": "site file",
    "remote-data set": "site key json",
    "remote-data get": "site key",
    "remote-data delete": "site key",
    "credentials create": "site",
    "credentials list": "site",
    "api": "method path",
    "sites create": "",
    "sites list": "",
    "stats": "",
    "results": "site",
}


def _admin_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    groups: dict[str, Any] = {}
    for name in COMMANDS:
        group, _, action = name.partition(" ")
        if not action:
            p = sub.add_parser(group, parents=[common], help=f"admin: {group}")
        else:
            if group not in groups:
                groups[group] = sub.add_parser(group, help=f"admin: {group}").add_subparsers(
                    dest="action", required=True
                )
            p = groups[group].add_parser(action, parents=[common])
        p.set_defaults(command=name)
        _positional(p, _ARGS[name])
        if name in ("sites create", "flags create"):
            p.add_argument("--code") if group == "sites" else None
            p.add_argument("--name")
        if name == "flags create":
            p.add_argument("--variations", default="off,on", help="comma-separated keys, first = default")
        if group in ("rules", "config") or name in ("flags enable", "flags disable"):
            p.add_argument("--env", default="production")
        if name == "rules add":
            p.add_argument(
                "--type", default="EXPERIMENTATION", choices=["EXPERIMENTATION", "TARGETED_DELIVERY"]
            )
            p.add_argument("--exposition", type=_share, default=1.0)
            p.add_argument("--split", required=True, help="e.g. off=0.5,on=0.5")
            p.add_argument("--segment", type=int)
        if name == "api":
            p.add_argument("body", nargs="?")
        if name == "results":
            results_cli.add_arguments(p)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("KAMELEOON_URL", DEFAULT_URL), help="server base URL")
    common.add_argument(
        "--admin-token", help="default $KAMELEOON_ADMIN_TOKEN, else the data dir's admin-token"
    )
    common.add_argument("--data-dir", type=Path, help="where to find the admin-token file")
    root = argparse.ArgumentParser(prog="kameleoon", description="Self-hosted Kameleoon-protocol server.")
    sub = root.add_subparsers(dest="group", required=True)
    _add_serve(sub)
    _admin_parsers(sub, common)
    return root


def run_admin(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        print(f"error: --url must start with http:// or https://, not {args.url!r}", file=sys.stderr)
        return 2
    token = args.admin_token or os.environ.get("KAMELEOON_ADMIN_TOKEN")
    token = token or read_admin_token(args.data_dir or default_data_dir())
    client = AdminClient(args.url, token)
    try:
        result = COMMANDS[args.command](client, args)
    except _BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ApiFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, str):
        print(result, end="" if result.endswith("\n") else "\n")
    elif result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.group in ("serve", "migrate"):
        try:
            from kameleoon_server._serve import migrate, serve
        except ImportError as exc:  # the SDK alone does not bring the server's dependencies
            print(
                f"error: {exc.name} is missing; install the server: pip install "
                "'kameleoon-client-python[server]'",
                file=sys.stderr,
            )
            return 2
        try:
            return serve(args) if args.group == "serve" else migrate(args)
        except KeyboardInterrupt:  # Ctrl-C while starting or stopping: no traceback
            return 130
    return run_admin(args)


if __name__ == "__main__":
    raise SystemExit(main())
