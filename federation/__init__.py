"""federation: an OIDC identity-federation token issuer for agent runs."""

__version__ = "0.1.0"
