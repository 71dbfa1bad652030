"""Local stand-ins for the clouds' token services, for tests and users' CI.

moto's STS never looks at the web identity token, so it cannot tell a good token from a
bad one. These stand-ins check a token the way the clouds do (discovery, JWKS,
signature, issuer, audience, times, the algorithms each cloud accepts) before they
answer, and they serve on loopback.
"""
