"""Server settings: limits, token lifetime, SSE behaviour. One frozen value, made by the CLI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    admin_token: str
    token_ttl_seconds: int = 7200  # > 1800 s so SDKs refresh tokens in the background (§4.3)
    max_body_bytes: int = 16 * 1024 * 1024  # tracking bodies are ~2.5 MiB at most (§5.6)
    max_lines: int = 200_000
    max_admin_body_bytes: int = 8 * 1024 * 1024
    sse_max_connections: int = 1000
    sse_keepalive_seconds: float = 15.0
    request_timeout_seconds: float = 30.0  # to receive a request, head and body (_http.py); 0: none
    visit_gap_ms: int = 30 * 60 * 1000  # a new visit starts after 30 minutes without events
    visitor_event_limit: int = 20_000  # most recent events read to answer /visit/visitor
    visitor_event_bytes: int = 32 * 1024 * 1024  # and at most this many bytes of their lines
    visitor_link_limit: int = 1000  # visitors linked to one user id read for /visit/visitor
