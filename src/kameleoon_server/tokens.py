"""Stateless access tokens for the Data API: HMAC-signed ``site.expiry.nonce.signature``.

Any server instance holding the signing key (kept in storage) can check a token without a
database round trip; valid tokens are memoised until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field


def hash_secret(secret: str) -> str:
    """Client secrets are stored as their SHA-256 (they are random, high-entropy strings)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


@dataclass(slots=True)
class TokenIssuer:
    key: bytes
    ttl_seconds: int
    _valid: dict[str, tuple[int, float]] = field(default_factory=dict)  # token -> (site_id, expiry)

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode("ascii")

    def issue(self, site_id: int, now: float | None = None) -> tuple[str, int]:
        """A new token for a site and its lifetime in whole seconds."""
        expiry = int(now if now is not None else time.time()) + self.ttl_seconds
        payload = f"{site_id}.{expiry}.{secrets.token_hex(6)}"
        return f"{payload}.{self._sign(payload)}", self.ttl_seconds

    def verify(self, token: str, now: float | None = None) -> int | None:
        """The site id of a valid, unexpired token, else None."""
        now = now if now is not None else time.time()
        known = self._valid.get(token)
        if known is not None:
            if known[1] > now:
                return known[0]
            del self._valid[token]
            return None
        if not token.isascii():  # tokens issued here are ASCII (and the signature check needs it)
            return None
        parts = token.split(".")
        if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[1]) > 19:
            return None
        payload = ".".join(parts[:3])
        if not hmac.compare_digest(self._sign(payload), parts[3]) or int(parts[1]) <= now:
            return None
        if len(self._valid) > 100_000:
            self._valid.clear()
        self._valid[token] = (int(parts[0]), float(parts[1]))
        return int(parts[0])
