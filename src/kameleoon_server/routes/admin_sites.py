"""Admin API: sites, credentials, environments, configuration import/export, remote data, events."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any, Final

import msgspec
from starlette.responses import Response

from kameleoon_server._datafile import build_datafile
from kameleoon_server._import import DatafileError, import_datafile
from kameleoon_server._integers import MAX_ID
from kameleoon_server._validate import environment_key_errors, environments_errors, settings_errors
from kameleoon_server._wire import EVENT_TYPE_NAMES
from kameleoon_server.model import (
    DEFAULT_ENVIRONMENT,
    Environment,
    SiteModel,
    SiteSettings,
    decode_model,
    encode_model,
)
from kameleoon_server.routes._admin_kit import (
    ApiError,
    Call,
    edit,
    endpoint,
    find,
    invalid,
    load,
    merge,
    to_json,
)
from kameleoon_server.state import ServerState, now_ms
from kameleoon_server.storage import CredentialRecord, SiteRecord
from kameleoon_server.tokens import hash_secret

_LISTED_EVENTS: Final = 1000, 8 * 1024 * 1024  # the events the admin API lists: count, line bytes

SITE_CODE_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESERVED_CODES: Final = frozenset(
    ("api", "v3", "sse", "oauth", "visit", "map", "metrics", "health", "favicon.ico")
)


class SiteCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str | None = None
    name: str = ""
    settings: SiteSettings = msgspec.field(default_factory=SiteSettings)
    environments: list[str] | None = None


class EnvironmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    name: str = ""


def new_site_code() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


def summary(record: SiteRecord, model: SiteModel) -> dict[str, Any]:
    return {
        "code": record.code,
        "name": model.name,
        "version": record.version,
        "updated_ms": record.updated_ms,
        "settings": to_json(model.settings),
        "environments": [e.key for e in model.environments],
        "flags": len(model.flags),
        "segments": len(model.segments),
        "goals": len(model.goals),
        "custom_data": len(model.custom_data),
    }


async def create_credential(state: ServerState, site_id: int, code: str) -> dict[str, str]:
    client_id = f"{code}-{secrets.token_hex(6)}"
    secret = secrets.token_urlsafe(32)
    await state.storage.add_credential(CredentialRecord(client_id, site_id, hash_secret(secret), now_ms()))
    return {"client_id": client_id, "client_secret": secret}


async def create_site(state: ServerState, spec: SiteCreate) -> dict[str, Any]:
    code = spec.code or new_site_code()
    if not SITE_CODE_RE.match(code) or code.lower() in RESERVED_CODES:
        raise ApiError(
            422, f"invalid site code {code!r}: 1-64 letters, digits, '_' or '-', not a reserved path"
        )
    invalid(settings_errors(spec.settings))
    model = SiteModel(name=spec.name or code, settings=spec.settings)
    if spec.environments is not None:
        invalid(environments_errors(spec.environments))
        model.environments = [Environment(key=k, name=k.title()) for k in dict.fromkeys(spec.environments)]
    record = await state.storage.create_site(code, encode_model(model), now_ms())
    credentials = await create_credential(state, record.id, code)
    return {"site": summary(record, model), "credentials": credentials}


@endpoint("GET", "/api/sites", "List sites")
async def list_sites(call: Call) -> Any:
    return [summary(r, decode_model(r.model)) for r in await call.state.storage.list_sites()]


@endpoint(
    "POST",
    "/api/sites",
    "Create a site (answers its first client id and secret, shown once)",
    body=SiteCreate,
    status=201,
)
async def post_site(call: Call) -> Any:
    return await create_site(call.state, call.body)


@endpoint("GET", "/api/sites/{site}", "A site with its whole configuration model")
async def get_site(call: Call) -> Any:
    record, model = await load(call)
    return summary(record, model) | {"model": to_json(model)}


@endpoint("PATCH", "/api/sites/{site}", "Change a site's name or settings", body=dict)
async def patch_site(call: Call) -> Any:
    unknown = set(call.body) - {"name", "settings"}
    if unknown:
        raise ApiError(422, f"unknown fields {sorted(unknown)} (allowed: name, settings)")
    if not isinstance(call.body.get("name", ""), str):
        raise ApiError(422, "name must be a string")
    if not isinstance(call.body.get("settings", {}), dict):
        raise ApiError(422, "settings must be an object")

    def change(model: SiteModel) -> None:
        model.name = call.body.get("name", model.name)
        if "settings" in call.body:
            model.settings = merge(model.settings, call.body["settings"], SiteSettings)
            invalid(settings_errors(model.settings))

    await edit(call, change)
    return await get_site(call)


@endpoint("DELETE", "/api/sites/{site}", "Delete a site with its events and remote data", status=204)
async def delete_site(call: Call) -> Any:
    if not await call.state.storage.delete_site(call.param("site")):
        raise ApiError(404, "unknown site")


@endpoint("GET", "/api/sites/{site}/credentials", "List the site's API client ids", tag="credentials")
async def list_credentials(call: Call) -> Any:
    record, _ = await load(call)
    creds = await call.state.storage.list_credentials(record.id)
    return [{"client_id": c.client_id, "created_ms": c.created_ms} for c in creds]


@endpoint(
    "POST",
    "/api/sites/{site}/credentials",
    "Create an API client id and secret",
    status=201,
    tag="credentials",
)
async def post_credential(call: Call) -> Any:
    record, _ = await load(call)
    return await create_credential(call.state, record.id, record.code)


@endpoint(
    "DELETE",
    "/api/sites/{site}/credentials/{client_id}",
    "Delete an API client",
    status=204,
    tag="credentials",
)
async def delete_credential(call: Call) -> Any:
    record, _ = await load(call)
    credential = await call.state.storage.get_credential(call.param("client_id"))
    if credential is None or credential.site_id != record.id:
        raise ApiError(404, "unknown client id")
    await call.state.storage.delete_credential(credential.client_id)


@endpoint("GET", "/api/sites/{site}/environments", "List environments", tag="environments")
async def list_environments(call: Call) -> Any:
    return to_json((await load(call))[1].environments)


@endpoint(
    "POST",
    "/api/sites/{site}/environments",
    "Add an environment",
    body=EnvironmentCreate,
    status=201,
    tag="environments",
)
async def post_environment(call: Call) -> Any:
    spec: EnvironmentCreate = call.body
    invalid(environment_key_errors(spec.key))

    def change(model: SiteModel) -> Any:
        if spec.key in model.environment_keys():
            raise ApiError(409, f"environment {spec.key!r} exists already")
        model.environments.append(Environment(key=spec.key, name=spec.name or spec.key))
        return to_json(model.environments[-1])

    return await edit(call, change)


@endpoint(
    "DELETE",
    "/api/sites/{site}/environments/{env}",
    "Delete an environment and its rules",
    status=204,
    tag="environments",
)
async def delete_environment(call: Call) -> Any:
    key = call.param("env")

    def change(model: SiteModel) -> None:
        env = find(model.environments, lambda e: e.key == key, f"environment {key!r}")
        if key == DEFAULT_ENVIRONMENT:
            raise ApiError(409, f"{key!r} cannot be deleted: it is served to SDKs that name no environment")
        if len(model.environments) == 1:
            raise ApiError(409, "a site needs at least one environment")
        model.environments.remove(env)
        for flag in model.flags:
            flag.environments.pop(key, None)

    await edit(call, change)


@endpoint(
    "GET",
    "/api/sites/{site}/configuration",
    "The configuration served to SDKs (query: environment, v3)",
    tag="configuration",
)
async def get_configuration(call: Call) -> Any:
    record, model = await load(call)
    environment = call.query("environment", DEFAULT_ENVIRONMENT)
    if environment not in model.environment_keys():
        raise ApiError(404, f"unknown environment {environment!r}")
    return build_datafile(model, environment, record.updated_ms, v3=call.query("v3") == "true")


@endpoint(
    "PUT",
    "/api/sites/{site}/configuration",
    "Import a configuration document into an environment (its flags, variations and custom data"
    " become the site's; the other environments keep their rules)",
    body="raw",
    tag="configuration",
)
async def put_configuration(call: Call) -> Any:
    environment = call.query("environment", DEFAULT_ENVIRONMENT)
    keep_domain = call.query("keep_data_api_domain") == "true"

    def change(model: SiteModel) -> SiteModel:
        try:
            imported = import_datafile(model, call.body, environment, keep_domain)
        except DatafileError as exc:
            raise ApiError(422, "configuration rejected", exc.errors) from None
        for field in msgspec.structs.fields(SiteModel):
            setattr(model, field.name, getattr(imported, field.name))
        return model

    model = await edit(call, change)
    return {"flags": len(model.flags), "segments": len(model.segments), "custom_data": len(model.custom_data)}


@endpoint(
    "GET", "/api/sites/{site}/remote-data", "List remote data keys (query: prefix, limit)", tag="remote data"
)
async def list_remote_data(call: Call) -> Any:
    record, _ = await load(call)
    limit = min(call.int_query("limit", 100, 1, MAX_ID), 1000)
    return await call.state.storage.list_remote_data(record.id, call.query("prefix"), limit)


@endpoint("GET", "/api/sites/{site}/remote-data/{key:path}", "Read remote data", tag="remote data")
async def get_remote_data(call: Call) -> Any:
    record, _ = await load(call)
    value = await call.state.storage.get_remote_data(record.id, call.param("key"))
    if value is None:
        raise ApiError(404, "unknown key")
    return Response(value, media_type="application/json")


@endpoint(
    "PUT",
    "/api/sites/{site}/remote-data/{key:path}",
    'Store remote data (any JSON; {"warehouseAudiences": {...}} for warehouse audiences)',
    body="raw",
    tag="remote data",
)
async def put_remote_data(call: Call) -> Any:
    record, _ = await load(call)
    value = msgspec.json.encode(call.body)
    await call.state.storage.put_remote_data(record.id, call.param("key"), value, now_ms())
    return call.body


@endpoint(
    "DELETE", "/api/sites/{site}/remote-data/{key:path}", "Delete remote data", status=204, tag="remote data"
)
async def delete_remote_data(call: Call) -> Any:
    record, _ = await load(call)
    if not await call.state.storage.delete_remote_data(record.id, call.param("key")):
        raise ApiError(404, "unknown key")


@endpoint(
    "GET",
    "/api/sites/{site}/events/summary",
    "Stored events per type (events, distinct visitors)",
    tag="events",
)
async def events_summary(call: Call) -> Any:
    record, _ = await load(call)
    counts = await call.state.storage.event_counts(record.id)
    return [
        {"type": EVENT_TYPE_NAMES.get(c.etype, str(c.etype)), "events": c.events, "visitors": c.visitors}
        for c in counts
    ]


@endpoint(
    "GET",
    "/api/sites/{site}/visitors/{visitor}/events",
    "A visitor's stored tracking lines (the latest 1000, up to 8 MiB of lines)",
    tag="events",
)
async def visitor_events(call: Call) -> Any:
    record, _ = await load(call)
    found = await call.state.storage.visitor_events(record.id, [call.param("visitor")], *_LISTED_EVENTS)
    return [
        {
            "time_ms": e.time_ms,
            "type": EVENT_TYPE_NAMES.get(e.etype, str(e.etype)),
            "nonce": e.nonce,
            "bot": e.bot,
            "line": e.line,
        }
        for e in found.events
    ]
