"""Feature flags and A/B tests speaking the Kameleoon protocol (API of the Kameleoon Python SDK 3.4.0)."""

from kameleoon._version import __version__

__all__ = ["__version__"]
