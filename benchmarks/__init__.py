"""The benchmark harness: how fast the issuer mints and serves tokens, next to baselines.

``python -m benchmarks`` (``make bench``) measures, in one run and side by side, the
in-process minting path against raw ES256 signing, and the real application served over
HTTP against a bare "hello" application on the same server configuration, for one and
two workers on SQLite and PostgreSQL; two workers against one as requests per server
CPU-second. It writes ``results/latest.{json,md,png}`` and prints the targets table
(measured, target, met or missed); a missed target is reported, never a failure.
Absolute numbers depend on the machine; the ratios are what the targets speak about.
"""
