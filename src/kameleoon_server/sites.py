"""In-memory cache of sites: decoded model and rendered configuration documents.

Entries are dropped when storage announces a change, so every instance serves the latest version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import formatdate

import msgspec

from kameleoon_server._datafile import build_datafile
from kameleoon_server.model import SiteModel, decode_model
from kameleoon_server.storage import ConfigChange, SiteRecord, Storage

_NEGATIVE_TTL_SECONDS = 5.0


@dataclass(slots=True)
class SiteState:
    record: SiteRecord
    model: SiteModel
    _documents: dict[tuple[str, bool], bytes | None] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def code(self) -> str:
        return self.record.code

    @property
    def updated_ms(self) -> int:
        return self.record.updated_ms

    @property
    def last_modified(self) -> str:
        return formatdate(self.record.updated_ms // 1000, usegmt=True)

    @property
    def auth_required(self) -> bool:
        return self.model.settings.data_api_auth == "required"

    def datafile(self, environment: str, v3: bool) -> bytes | None:
        """The rendered configuration of an environment (None for an unknown environment)."""
        key = (environment, v3)
        if key not in self._documents:
            document = None
            if environment in self.model.environment_keys():
                data = build_datafile(self.model, environment, self.record.updated_ms, v3)
                document = msgspec.json.encode(data)
            self._documents[key] = document
        return self._documents[key]


class SiteRegistry:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._sites: dict[str, SiteState] = {}
        self._missing: dict[str, float] = {}
        self._announced: dict[str, int] = {}  # latest version announced per site code
        self._changes: dict[str, int] = {}  # changes announced per site code, deletions included

    async def get(self, code: str) -> SiteState | None:
        known, site = self.cached(code)
        return site if known else await self.refresh(code)

    def cached(self, code: str) -> tuple[bool, SiteState | None]:
        """(True, the site) when the cache knows it, (True, None) when it recently knew the site
        did not exist, (False, None) when only the database can tell (:meth:`get` asks it)."""
        site = self._sites.get(code)
        if site is not None:
            return True, site
        return self._missing.get(code, 0.0) > time.monotonic(), None

    async def refresh(self, code: str) -> SiteState | None:
        record = await self._read(code)
        if record is None:
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing[code] = time.monotonic() + _NEGATIVE_TTL_SECONDS
            self._sites.pop(code, None)
            return None
        known = self._sites.get(code)
        if known is not None and known.record.version >= record.version:
            return known
        site = SiteState(record, decode_model(record.model))
        self._sites[code] = site
        return site

    async def _read(self, code: str) -> SiteRecord | None:
        """The site's record, read again while a change was announced during the read (the
        read may have seen the database before it: a deleted site must not come back) or the
        record is older than the latest announced version."""
        while True:
            changes = self._changes.get(code, 0)
            record = await self._storage.get_site(code)
            if self._changes.get(code, 0) != changes:
                continue
            if record is None or record.version >= self._announced.get(code, 0):
                return record

    def on_change(self, change: ConfigChange) -> None:
        self._changes[change.site_code] = self._changes.get(change.site_code, 0) + 1
        if not change.deleted:
            self._announced[change.site_code] = change.version
        else:
            self._announced.pop(change.site_code, None)
        self._sites.pop(change.site_code, None)
        self._missing.pop(change.site_code, None)
