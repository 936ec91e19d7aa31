"""Framework integrations: WSGI middleware and Django."""
