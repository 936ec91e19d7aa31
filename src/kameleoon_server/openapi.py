"""The OpenAPI 3.1 document of the admin API, generated from the endpoint table."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from kameleoon_server import __version__
from kameleoon_server.routes._admin_kit import Endpoint

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _body_schema(body: Any, components: dict[str, Any]) -> dict[str, Any]:
    if body == "raw":
        return {"description": "any JSON value"}
    if body is dict:
        return {"type": "object", "description": "the fields to change"}
    (schema,), defs = msgspec.json.schema_components([body], ref_template="#/components/schemas/{name}")
    components.update(defs)
    return schema


def _operation(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "tags": [ep.tag],
        "operationId": ep.handler.__name__,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(ep.path)
        ]
        + list(ep.parameters),
        "responses": {
            str(ep.status): {"description": "success"},
            "401": {"description": "missing or wrong admin token"},
            "404": {"description": "not found"},
            "422": {"description": "validation failed: {error, details[]}"},
        },
    }
    if ep.response is not None:
        schema = _body_schema(ep.response, components)
        op["responses"][str(ep.status)]["content"] = {"application/json": {"schema": schema}}
    if ep.public:
        op["security"] = []
    if ep.body is not None:
        schema = _body_schema(ep.body, components)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path = _PARAM.sub(r"{\1}", ep.path)
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kameleoon server admin API",
            "version": __version__,
            "description": "Manage sites, flags, rules, segments, goals, custom data and remote data. "
            "Every change bumps the site's configuration timestamp and notifies connected SDKs.",
        },
        "servers": [{"url": "/"}],
        "security": [{"adminToken": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
