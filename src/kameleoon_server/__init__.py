"""Self-hostable back end speaking the Kameleoon SDK protocol (needs the ``[server]`` extra)."""
