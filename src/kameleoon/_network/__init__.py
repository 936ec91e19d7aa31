"""Network I/O: transports, endpoints, configuration updates, token, tracking, remote data."""
