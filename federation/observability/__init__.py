"""federation/observability."""
