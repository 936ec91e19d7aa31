"""``kameleoon results SITE EXPERIMENT``: the results API as a readable table (or ``--json``).

Standard library only; one option per query parameter of the API (``--cap-percentile`` for
``cap_percentile``, ...).
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlencode

from kameleoon_server._client import AdminClient
from kameleoon_server.results.params import PARAMS
from kameleoon_server.results.table import render

__all__ = ["add_arguments", "run"]


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=int, help="experiment id (the rule's experiment_id)")
    for param in PARAMS:
        parser.add_argument(_option(param.name), dest=f"q_{param.name}", metavar="VALUE", help=param.help)
    parser.add_argument("--json", action="store_true", help="print the API's JSON document instead")


def query_string(args: argparse.Namespace) -> str:
    values = {p.name: getattr(args, f"q_{p.name}") for p in PARAMS}
    return urlencode({k: v for k, v in values.items() if v is not None})


def run(client: AdminClient, args: argparse.Namespace) -> Any:
    path = client.site_path(args.site, "experiments", str(args.experiment), "results")
    query = query_string(args)
    document = client.request("GET", path + (f"?{query}" if query else ""))
    return json.dumps(document, indent=2, ensure_ascii=False) if args.json else render(document)
