"""federation/issuing."""
