"""The identity this SDK reports to servers and to SDK_LANGUAGE targeting."""

SDK_LANGUAGE = "PYTHON"
SDK_VERSION = "3.4.0"  # the API and protocol version implemented (decisions depend on it)
