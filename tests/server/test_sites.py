"""The site cache (kameleoon_server.sites): what a read that crosses a change leaves cached."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kameleoon_server.sites import SiteRegistry
from kameleoon_server.storage import ConfigChange, SiteRecord, Storage

RECORD = SiteRecord(id=1, code="gone", version=3, updated_ms=1_000, model=b"{}")


class SlowSites:
    """Serves ``get_site`` from ``rows``; the first read sees the rows when it starts but
    returns only once ``release`` is set (a read that a change overtakes)."""

    def __init__(self) -> None:
        self.rows: dict[str, SiteRecord] = {"gone": RECORD}
        self.release = asyncio.Event()
        self.reads = 0

    async def get_site(self, code: str) -> SiteRecord | None:
        self.reads += 1
        seen = self.rows.get(code)
        if self.reads == 1:
            await self.release.wait()
        return seen


def test_a_read_overtaken_by_the_sites_deletion_does_not_bring_it_back() -> None:
    async def scenario() -> tuple[Any, tuple[bool, Any], int]:
        storage = SlowSites()
        registry = SiteRegistry(cast(Storage, storage))
        reading = asyncio.ensure_future(registry.refresh("gone"))
        await asyncio.sleep(0)  # the read has seen the site
        del storage.rows["gone"]  # the deletion commits, then is announced
        registry.on_change(ConfigChange(1, "gone", RECORD.version + 1, 2_000, deleted=True))
        storage.release.set()
        return await reading, registry.cached("gone"), storage.reads

    site, cached, reads = asyncio.run(scenario())
    assert site is None
    assert cached == (True, None)  # known to be missing, not cached as live
    assert reads == 2


def test_a_read_overtaken_by_an_update_returns_the_new_version() -> None:
    async def scenario() -> Any:
        storage = SlowSites()
        registry = SiteRegistry(cast(Storage, storage))
        reading = asyncio.ensure_future(registry.refresh("gone"))
        await asyncio.sleep(0)
        storage.rows["gone"] = SiteRecord(1, "gone", 4, 2_000, b"{}")
        registry.on_change(ConfigChange(1, "gone", 4, 2_000))
        storage.release.set()
        return await reading

    assert asyncio.run(scenario()).record.version == 4
