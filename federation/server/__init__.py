"""federation/server."""
