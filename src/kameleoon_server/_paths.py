"""Where the server keeps its files, and how the admin token is found."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ADMIN_TOKEN_FILE = "admin-token"


def default_data_dir() -> Path:
    """``$KAMELEOON_DATA_DIR``, else ``$XDG_DATA_HOME/kameleoon-server`` (~/.local/share/...)."""
    if explicit := os.environ.get("KAMELEOON_DATA_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kameleoon-server"


def read_admin_token(data_dir: Path) -> str | None:
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def admin_token(explicit: str | None, data_dir: Path) -> tuple[str, bool]:
    """(token, generated): flag/env value, else the data dir's file, else a new one saved there."""
    token = explicit or os.environ.get("KAMELEOON_ADMIN_TOKEN") or read_admin_token(data_dir)
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return token, True
