"""federation/api/routes."""
