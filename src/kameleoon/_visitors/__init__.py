"""Visitor records and the bounded, expiring, thread-safe store that holds them."""
