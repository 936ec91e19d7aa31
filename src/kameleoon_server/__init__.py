"""Self-hostable back end speaking the Kameleoon SDK protocol (needs the ``[server]`` extra)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kameleoon-client-python")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
