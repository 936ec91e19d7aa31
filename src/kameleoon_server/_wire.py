"""Pure parsing of the SDK wire formats (protocol.md §1.4, §4, §5, §13). No I/O.

The hot path is :func:`parse_events_body`: it turns a tracking body into storage rows. It does the
minimum per line (split, a few ``int()``/``float()`` calls, percent-decoding only where a ``%`` is
present) and keeps the raw line, so that every other field can be decoded later, off the hot path.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, unquote

from kameleoon_server._integers import parse_int

# Event type codes stored in the ``etype`` column. Never renumber: they are persisted.
ET_OTHER: Final = 0
ET_ACTIVITY: Final = 1
ET_EXPERIMENT: Final = 2
ET_CONVERSION: Final = 3
ET_CUSTOM_DATA: Final = 4
ET_PAGE: Final = 5
ET_STATIC_DATA: Final = 6
ET_GEOLOCATION: Final = 7
ET_TARGETING_SEGMENT: Final = 8

EVENT_TYPES: Final[dict[str, int]] = {
    "activity": ET_ACTIVITY,
    "experiment": ET_EXPERIMENT,
    "conversion": ET_CONVERSION,
    "customData": ET_CUSTOM_DATA,
    "page": ET_PAGE,
    "staticData": ET_STATIC_DATA,
    "geolocation": ET_GEOLOCATION,
    "targetingSegment": ET_TARGETING_SEGMENT,
}
EVENT_TYPE_NAMES: Final[dict[int, str]] = {code: name for name, code in EVENT_TYPES.items()} | {
    ET_OTHER: "other"
}

MAX_IDENTITY_LENGTH: Final = 255
MAX_NONCE_LENGTH: Final = 64
MAX_REVENUE: Final = 1e15
"""Largest magnitude of a conversion's revenue that is stored; beyond it (as for NaN and the
infinities) the revenue is unknown (NULL) and the conversion still counts.

* No real order comes near it: about ten times the yearly output of the world in US dollars,
  still more than a billion dollars in a currency of a million units to the dollar.
* Every whole amount up to it is exact in a double (it is below 2**53).
* A fast-path revenue (at most 15 integer digits) never exceeds it, once rounded.
* The results' sums stay finite: a visitor's revenue is at most k * 1e15 for k conversions; the
  sum of the squares over n visitors, n * (k * 1e15)**2, stays below the largest double
  (1.8e308) unless n * k**2 exceeds 1e278, and the square of the sum, (n * k * 1e15)**2, unless
  n * k exceeds 1e139. (The square of a single revenue overflows from 1.34e154 on.)
"""

# One stored event, in the column order of the ``events`` table (see storage.base.EventRow).
Row = tuple[
    int,  # site_id
    str,  # identity (visitorCode or mappingValue)
    int,  # is_mapping: 1 when the line used mappingValue=
    str,  # nonce
    int,  # etype
    int,  # time_ms (server receive time)
    int | None,  # exp_id: experiment id (experiment lines) or segment id (targetingSegment lines)
    int | None,  # var_id
    int | None,  # goal_id
    float | None,  # revenue
    int | None,  # negative (0/1, conversions only)
    int | None,  # cd_index
    int,  # bot: 1 when the visitor's user agent in this request looks like a bot
    str,  # the raw line
]
Link = tuple[int, str, str, int]  # site_id, user_id, visitor_code, time_ms

_BOT_RE: Final = re.compile(
    r"(?<!cu)bot\b|bot/|crawl|spider|slurp|curl/|wget|python-requests|python-urllib|aiohttp|httpclient|"
    r"okhttp|go-http-client|java/|headless|phantomjs|lighthouse|pingdom|uptime|monitor|"
    r"facebookexternalhit|preview|scrapy|feedfetcher|archiver",
    re.IGNORECASE,
)
_bot_cache: dict[str, bool] = {}


def is_bot_user_agent(user_agent: str) -> bool:
    """Whether a user agent looks like a robot (curl/8.0, crawlers, HTTP libraries, headless browsers)."""
    known = _bot_cache.get(user_agent)
    if known is None:
        known = not user_agent.strip() or _BOT_RE.search(user_agent) is not None
        if len(_bot_cache) > 10_000:
            _bot_cache.clear()
        _bot_cache[user_agent] = known
    return known


class MalformedLine(ValueError):
    """A tracking line that cannot be stored (the message says why)."""


class TooManyLines(ValueError):
    """A tracking body with more lines than allowed (answered 413)."""


@dataclass(frozen=True, slots=True)
class BodySummary:
    """What one tracking body held, for counters and the answer (the rows themselves are stored)."""

    received: int
    malformed: int = 0
    bots: int = 0
    unknown_types: int = 0
    invalid_utf8: bool = False
    errors: tuple[str, ...] = ()  # first few reasons a line was rejected, for the log


@dataclass(slots=True)
class ParsedBody:
    """The result of parsing one tracking body."""

    rows: list[Row] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    malformed: int = 0
    bots: int = 0
    unknown_types: int = 0
    errors: list[str] = field(default_factory=list)  # first few reasons, for the log
    invalid_utf8: bool = False

    def reject(self, line: str, reason: str) -> None:
        self.malformed += 1
        if len(self.errors) < 5:
            self.errors.append(f"{reason}: {line[:120]!r}")

    def summary(self) -> BodySummary:
        return BodySummary(
            len(self.rows),
            self.malformed,
            self.bots,
            self.unknown_types,
            self.invalid_utf8,
            tuple(self.errors),
        )


def split_params(line: str) -> dict[str, str]:
    """``a=1&b=2`` → ``{"a": "1", "b": "2"}`` with values still percent-encoded."""
    try:
        return dict(part.split("=", 1) for part in line.split("&"))
    except ValueError:
        raise MalformedLine("parameter without '='") from None


def decode(value: str) -> str:
    """Percent-decodes a value (``+`` stays a plus: the SDK encodes spaces as ``%20``)."""
    return unquote(value, errors="strict") if "%" in value else value


def decode_line(line: str) -> dict[str, str]:
    """The parameters of a stored line, values decoded (slow path, used when answering reads).
    Names are taken as they are, as ingest took them (:func:`split_params`): a name spelled
    with percent-escapes is another parameter, not a second ``id``."""
    params = {}
    for part in line.split("&"):
        name, _, value = part.partition("=")
        params[name] = unquote(value, errors="replace") if "%" in value else value
    return params


def _int(params: dict[str, str], name: str) -> int:
    raw = params.get(name)
    if raw is None:
        raise MalformedLine(f"missing {name}")
    value = parse_int(raw)  # ASCII digits only, as the fast paths read them
    if value is None:
        raise MalformedLine(f"{name} is not a 64-bit integer")
    return value


def _float(params: dict[str, str], name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(decode(raw))
    except ValueError:
        raise MalformedLine(f"{name} is not a number") from None


def _bool(params: dict[str, str], name: str) -> bool:
    raw = params.get(name, "false")
    if raw not in ("true", "false"):
        raise MalformedLine(f"{name} is not true/false")
    return raw == "true"


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")  # decoded text is valid UTF-8 otherwise


def _values_count_map(params: dict[str, str]) -> dict[str, object]:
    try:
        text = decode(params["valuesCountMap"])
        value = json.loads(text)
    except KeyError:
        raise MalformedLine("missing valuesCountMap") from None
    except (ValueError, RecursionError):
        raise MalformedLine("valuesCountMap is not JSON (or is nested too deeply)") from None
    if not isinstance(value, dict):
        raise MalformedLine("valuesCountMap is not a JSON object")
    if _SURROGATE_ESCAPE.search(text) is not None and not is_unicode(value):
        raise MalformedLine("valuesCountMap holds text that is not valid Unicode (a lone surrogate)")
    return value


def is_unicode(value: object) -> bool:
    """Whether decoded JSON has only text that UTF-8 can carry: ``json`` decodes a lone
    ``\\ud800`` escape to a string that the database and the JSON answers cannot encode."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


_STATIC_KEYS: Final = frozenset(
    {"deviceType", "browserIndex", "os", "osIndex", "country", "region", "city", "postalCode"}
    | {"latitude", "longitude", "visitNumber", "timeSincePreviousVisit"}
)


def known_revenue(revenue: float) -> float | None:
    """``revenue``, or None (unknown) when it is NaN, infinite (an SDK may send them) or beyond
    :data:`MAX_REVENUE` in magnitude."""
    return revenue if abs(revenue) <= MAX_REVENUE else None  # False for NaN


_Fields = tuple[int | None, int | None, int | None, float | None, int | None, int | None]
_NO_FIELDS: Final[_Fields] = (None, None, None, None, None, None)


def _type_fields(etype: int, params: dict[str, str]) -> _Fields:
    """(exp_id, var_id, goal_id, revenue, negative, cd_index) for one line; raises MalformedLine."""
    if etype == ET_EXPERIMENT:
        return (_int(params, "id"), _int(params, "variationId"), None, None, None, None)
    if etype == ET_CONVERSION:
        revenue = known_revenue(_float(params, "revenue", 0.0))
        return (None, None, _int(params, "goalId"), revenue, int(_bool(params, "negative")), None)
    if etype == ET_CUSTOM_DATA:
        index = _int(params, "index")
        _values_count_map(params)
        return (None, None, None, None, None, index)
    if etype == ET_PAGE:
        if not params.get("href"):
            raise MalformedLine("missing href")
        return _NO_FIELDS
    if etype in (ET_STATIC_DATA, ET_GEOLOCATION):
        if _STATIC_KEYS.isdisjoint(params):
            raise MalformedLine("staticData line without data")
        return _NO_FIELDS
    if etype == ET_TARGETING_SEGMENT:
        return (_int(params, "id"), None, None, None, None, None)
    return _NO_FIELDS


def _identity(params: dict[str, str]) -> tuple[str, int]:
    raw = params.get("visitorCode")
    is_mapping = 0
    if raw is None:
        raw = params.get("mappingValue")
        is_mapping = 1
    if not raw:
        raise MalformedLine("missing visitorCode/mappingValue")
    identity = decode(raw)
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise MalformedLine("visitor code longer than 255 characters")
    return identity, is_mapping


def _links(params: dict[str, str], site_id: int, identity: str, now_ms: int) -> Iterator[Link]:
    """Mapping-identifier customData lines link the anonymous visitor to the user id(s) given."""
    for user_id in _values_count_map(params):
        if user_id and user_id != identity and len(user_id) <= MAX_IDENTITY_LENGTH:
            yield (site_id, user_id, identity, now_ms)


# Fast paths: the exact layouts the SDKs write for the most frequent lines (§5.3). Anything else
# (or anything these do not match exactly, e.g. a percent-encoded visitor code) takes the general
# path below, which accepts every valid line. A fast-path revenue has at most 15 integer digits,
# so it is within MAX_REVENUE (1e15 at most, once rounded) and needs no check.
_NONCE = r"nonce=([0-9A-Za-z_\-]{1,64})"
_WHO = r"&(visitorCode|mappingValue)=([^&%]{1,255})(?:&userAgent=([^&]*))?"
_FAST_EXPERIMENT: Final = re.compile(
    _NONCE + r"&eventType=experiment&id=(-?[0-9]{1,18})&variationId=(-?[0-9]{1,18})" + _WHO
)
_FAST_CONVERSION: Final = re.compile(
    _NONCE + r"&eventType=conversion&goalId=(-?[0-9]{1,18})&revenue=(-?[0-9]{1,15}(?:\.[0-9]{1,15})?)"
    r"&negative=(true|false)" + _WHO
)
_FAST_ACTIVITY: Final = re.compile(_NONCE + r"&eventType=activity" + _WHO)

# nonce, identity, is_mapping, etype, type fields, raw user agent, params (general path only)
_Parsed = tuple[str, str, int, int, _Fields, "str | None", "dict[str, str] | None"]


def _fast(line: str) -> _Parsed | None:
    if (m := _FAST_EXPERIMENT.fullmatch(line)) is not None:
        nonce, exp_id, var_id, kind, identity, ua = m.groups()
        fields: _Fields = (int(exp_id), int(var_id), None, None, None, None)
        return nonce, identity, int(kind == "mappingValue"), ET_EXPERIMENT, fields, ua, None
    if (m := _FAST_CONVERSION.fullmatch(line)) is not None:
        nonce, goal, revenue, negative, kind, identity, ua = m.groups()
        fields = (None, None, int(goal), float(revenue), int(negative == "true"), None)
        return nonce, identity, int(kind == "mappingValue"), ET_CONVERSION, fields, ua, None
    if (m := _FAST_ACTIVITY.fullmatch(line)) is not None:
        nonce, kind, identity, ua = m.groups()
        return nonce, identity, int(kind == "mappingValue"), ET_ACTIVITY, _NO_FIELDS, ua, None
    return None


def _general(line: str, out: ParsedBody) -> _Parsed:
    """Any valid line; raises MalformedLine."""
    params = split_params(line)
    nonce = params.get("nonce")
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise MalformedLine("missing or oversized nonce")
    identity, is_mapping = _identity(params)
    etype = EVENT_TYPES.get(params.get("eventType", ""), ET_OTHER)
    if etype == ET_OTHER:
        if "eventType" not in params:
            raise MalformedLine("missing eventType")
        out.unknown_types += 1
    return (
        decode(nonce),
        identity,
        is_mapping,
        etype,
        _type_fields(etype, params),
        params.get("userAgent"),
        params,
    )


# The same three layouts for a whole body at once (one C-level scan instead of one per line).
_FAST_BODY: Final = re.compile(
    r"^(nonce=([0-9A-Za-z_\-]{1,64})&eventType=(?:"
    r"experiment&id=(-?[0-9]{1,18})&variationId=(-?[0-9]{1,18})"
    r"|conversion&goalId=(-?[0-9]{1,18})&revenue=(-?[0-9]{1,15}(?:\.[0-9]{1,15})?)&negative=(true|false)"
    r"|(activity))"
    r"&(visitorCode|mappingValue)=([^&%\r\n]{1,255})(?:&userAgent=([^&\r\n]*))?)$",
    re.MULTILINE,
)


FastLine = tuple[str, str, str, str, str, str, str, str, str, str, str]
"""The groups of ``_FAST_BODY`` for one line: line, nonce, experiment id, variation id, goal id,
revenue, negative, activity, identity kind, identity, user agent (empty strings when absent)."""


@dataclass(frozen=True, slots=True)
class FastBody:
    """A body whose every line has a fast-path layout and none a robot's user agent, kept as the
    regex groups of its lines: a storage that turns them into rows in SQL skips the per-row
    Python work (:meth:`rows` does it in Python)."""

    site_id: int
    time_ms: int
    lines: list[FastLine]

    def summary(self) -> BodySummary:
        return BodySummary(len(self.lines))

    def rows(self) -> list[Row]:
        return _fast_rows(self.lines, self.site_id, self.time_ms)


def _scan_fast(body: str) -> list[FastLine] | None:
    """The groups of every line, if every line has a fast-path layout, else None."""
    found: list[FastLine] = _FAST_BODY.findall(body)
    return found if len(found) == body.count("\n") + 1 else None


def _bot_flags(found: list[FastLine]) -> list[int] | None:
    """Per line, 1 if the user agent on its visitor's first line looks like a robot's; None when
    a user agent is not valid percent-encoding (the general path then rejects that line)."""
    flags = []
    ua_identity: str | None = None
    bot = 0
    try:
        for groups in found:
            if groups[9] != ua_identity:
                ua_identity, ua = groups[9], groups[10]
                # findall gives "" for an absent user agent too: an empty one is a robot's
                bot = int("&userAgent=" in groups[0] and is_bot_user_agent(decode(ua)))
            flags.append(bot)
    except UnicodeDecodeError:
        return None
    return flags


def _fast_rows(found: list[FastLine], site_id: int, now_ms: int, bots: list[int] | None = None) -> list[Row]:
    rows: list[Row] = []
    for i, (line, nonce, exp_id, var_id, goal, revenue, negative, _, kind, identity, _) in enumerate(found):
        bot = bots[i] if bots else 0
        is_mapping = int(kind == "mappingValue")
        if exp_id:
            fields: _Fields = (int(exp_id), int(var_id), None, None, None, None)
            rows.append((site_id, identity, is_mapping, nonce, ET_EXPERIMENT, now_ms, *fields, bot, line))
        elif goal:
            fields = (None, None, int(goal), float(revenue), int(negative == "true"), None)
            rows.append((site_id, identity, is_mapping, nonce, ET_CONVERSION, now_ms, *fields, bot, line))
        else:
            rows.append((site_id, identity, is_mapping, nonce, ET_ACTIVITY, now_ms, *_NO_FIELDS, bot, line))
    return rows


def _parse_fast_body(body: str, site_id: int, now_ms: int) -> ParsedBody | None:
    """The rows of a body whose every line has a fast-path layout, else None."""
    found = _scan_fast(body)
    bots = None if found is None else _bot_flags(found)
    if found is None or bots is None:
        return None
    out = ParsedBody(rows=_fast_rows(found, site_id, now_ms, bots))
    out.bots = sum(bots)
    return out


def parse_for_storage(raw: bytes, site_id: int, now_ms: int, max_lines: int) -> FastBody | ParsedBody:
    """:func:`parse_events_bytes`, except that a body of fast-path lines without robots stays a
    :class:`FastBody`. Raises :class:`TooManyLines`."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return parse_events_bytes(raw, site_id, now_ms, max_lines)
    if body.count("\n") >= max_lines:
        raise TooManyLines(f"{body.count(chr(10)) + 1} lines, the limit is {max_lines}")
    found = _scan_fast(body)
    if found is not None and ("&userAgent=" not in body or _bot_flags(found) == [0] * len(found)):
        return FastBody(site_id, now_ms, found)
    return parse_events_body(body, site_id, now_ms, max_lines)


def parse_events_bytes(raw: bytes, site_id: int, now_ms: int, max_lines: int) -> ParsedBody:
    """:func:`parse_events_body` for the bytes of a request body (invalid UTF-8 fails its lines)."""
    try:
        return parse_events_body(raw.decode("utf-8"), site_id, now_ms, max_lines)
    except UnicodeDecodeError:
        pass
    if (newlines := raw.count(b"\n")) >= max_lines:
        raise TooManyLines(f"{newlines + 1} lines, the limit is {max_lines}")
    # Lines that are not UTF-8 are malformed: decoded with replacement characters, two such
    # lines could look alike (their nonces too) and one would be dropped as a duplicate.
    good, bad = [], 0
    for line in raw.split(b"\n"):
        try:
            good.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
    parsed = parse_events_body("\n".join(good), site_id, now_ms, max_lines)
    parsed.malformed += bad
    parsed.invalid_utf8 = True
    return parsed


def parse_events_body(body: str, site_id: int, now_ms: int, max_lines: int) -> ParsedBody:
    """Parses a ``POST /visit/events`` body (§5) into rows; bad lines are counted and skipped.

    Raises :class:`TooManyLines` when the body has more than ``max_lines`` lines.
    """
    if body.count("\n") >= max_lines:
        raise TooManyLines(f"{body.count(chr(10)) + 1} lines, the limit is {max_lines}")
    fast = _parse_fast_body(body, site_id, now_ms)
    if fast is not None:
        return fast
    lines = body.split("\n")
    out = ParsedBody()
    rows = out.rows
    ua_identity: str | None = None
    bot = 0
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        try:
            parsed = _fast(line) or _general(line, out)
            nonce, identity, is_mapping, etype, fields, ua, params = parsed
            if identity != ua_identity:  # first line of this visitor in the request
                ua_identity = identity
                bot = int(ua is not None and is_bot_user_agent(decode(ua)))
            if params is not None and etype == ET_CUSTOM_DATA and params.get("mappingIdentifier") == "true":
                out.links.extend(_links(params, site_id, identity, now_ms) if not is_mapping else ())
        except (MalformedLine, UnicodeDecodeError) as exc:
            out.reject(line, str(exc) or type(exc).__name__)
            continue
        out.bots += bot
        rows.append((site_id, identity, is_mapping, nonce, etype, now_ms, *fields, bot, line))
    return out


# --- OAuth token request (§4.1 and Appendix A.4) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def parse_token_request(body: str, authorization: str | None) -> ClientCredentials:
    """Client credentials from a form body (3.4.0) or an HTTP Basic header (3.22.2).

    Raises ``ValueError`` with a message fit for an OAuth ``error_description``.
    """
    form = dict(parse_qsl(body.replace("+", "%20"), keep_blank_values=True))
    grant = form.get("grant_type")
    if grant is not None and grant != "client_credentials":
        raise ValueError("unsupported grant_type (only client_credentials)")
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("malformed Basic authorization") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise ValueError("malformed Basic authorization")
        return ClientCredentials(unquote(client_id), unquote(secret))
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    if not form_id or form_secret is None:
        raise ValueError("client_id and client_secret are required")
    return ClientCredentials(form_id, form_secret)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
