"""Versioned SQLite schema: migration N brings ``PRAGMA user_version`` from N-1 to N."""

from __future__ import annotations

import sqlite3
from typing import Final

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: initial schema
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE sites (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        model BLOB NOT NULL
    );
    CREATE TABLE site_history (
        site_id INTEGER NOT NULL,
        version INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        model BLOB NOT NULL,
        PRIMARY KEY (site_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE credentials (
        client_id TEXT PRIMARY KEY,
        site_id INTEGER NOT NULL,
        secret_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX credentials_site ON credentials (site_id);
    CREATE TABLE remote_data (
        site_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (site_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL,
        identity TEXT NOT NULL,
        is_mapping INTEGER NOT NULL,
        nonce TEXT NOT NULL,
        etype INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        exp_id INTEGER,
        var_id INTEGER,
        goal_id INTEGER,
        revenue REAL,
        negative INTEGER,
        cd_index INTEGER,
        bot INTEGER NOT NULL,
        line TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_dedup ON events (site_id, identity, nonce);
    CREATE INDEX events_exposures ON events (site_id, exp_id, var_id, time_ms) WHERE etype = 2;
    CREATE INDEX events_conversions ON events (site_id, goal_id, time_ms) WHERE etype = 3;
    CREATE INDEX events_custom_data ON events (site_id, cd_index, time_ms) WHERE etype = 4;
    CREATE TABLE visitor_links (
        site_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        visitor_code TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        PRIMARY KEY (site_id, user_id, visitor_code)
    ) WITHOUT ROWID;
    """,
    # 2: results queries (kameleoon_server.results.sql) read exposures and conversions from
    # covering indexes (no table lookups): exposures in identity order, so that grouping them
    # per visitor streams; etype is included because SQLite needs it to cover the query.
    """
    DROP INDEX events_exposures;
    CREATE INDEX events_exposures ON events (site_id, exp_id, identity, time_ms, var_id, bot, etype)
        WHERE etype = 2;
    DROP INDEX events_conversions;
    CREATE INDEX events_conversions
        ON events (site_id, goal_id, time_ms, identity, revenue, negative, bot, etype) WHERE etype = 3;
    CREATE INDEX events_static ON events (site_id, identity) WHERE etype = 6;
    CREATE INDEX visitor_links_code ON visitor_links (site_id, visitor_code, user_id);
    """,
    # 3: faster breakdowns of results (docs/results.md, "How it is computed"): static data (device,
    #    browser, OS) per visitor, latest line first (``id`` is the rowid, named so that it
    #    orders the entries), with the three values as indexed expressions, so that a visitor's
    #    latest value is found by one seek. The expressions are spelled exactly as
    #    ``results.dialect.SQLITE.line_param`` spells them: SQLite uses an indexed expression only
    #    for an identical one (a test checks it).
    """
    DROP INDEX events_static;
    CREATE INDEX events_static ON events (
        site_id,
        identity,
        id,
        time_ms,
        (CASE WHEN instr(('&' || line), '&deviceType=') = 0 THEN NULL
          ELSE substr(substr(('&' || line), instr(('&' || line), '&deviceType=') + 12), 1,
            instr(substr(('&' || line), instr(('&' || line), '&deviceType=') + 12) || '&', '&') - 1) END),
        (CASE WHEN instr(('&' || line), '&browserIndex=') = 0 THEN NULL
          ELSE substr(substr(('&' || line), instr(('&' || line), '&browserIndex=') + 14), 1,
            instr(substr(('&' || line), instr(('&' || line), '&browserIndex=') + 14) || '&', '&') - 1) END),
        (CASE WHEN instr(('&' || line), '&os=') = 0 THEN NULL
          ELSE substr(substr(('&' || line), instr(('&' || line), '&os=') + 4), 1,
            instr(substr(('&' || line), instr(('&' || line), '&os=') + 4) || '&', '&') - 1) END)
    ) WHERE etype = 6;
    """,
    # 4: site ids are never reused (AUTOINCREMENT): a deleted site's id, still in the access
    #    tokens issued for it and in events its ingest had in flight, must not name a new site.
    """
    CREATE TABLE sites_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        code TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        model BLOB NOT NULL
    );
    INSERT INTO sites_new (id, code, version, created_ms, updated_ms, model)
        SELECT id, code, version, created_ms, updated_ms, model FROM sites;
    DROP TABLE sites;
    ALTER TABLE sites_new RENAME TO sites;
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Applies the pending migrations, each in its own transaction; returns the schema version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise RuntimeError(f"database schema {version} is newer than this server ({len(MIGRATIONS)})")
    for number in range(version + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[number - 1]
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
