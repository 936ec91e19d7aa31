"""HTTP routes: the SDK protocol (config, oauth, events, data, visitor, sse) and the admin API."""
