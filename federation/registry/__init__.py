"""federation/registry."""
