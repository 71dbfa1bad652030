"""federation/domain."""
