"""federation/api/middleware."""
