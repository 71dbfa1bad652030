"""Helpers of the auditor's tests against a live issuer (an in-process server): the
audience tokens are issued for, how long a command waits for a token to be logged, and
the CLI run as an auditor holding an API key."""

from __future__ import annotations

import subprocess

from tests.cli.helpers import invoke_cli
from tests.support import LiveServer

AWS = "sts.amazonaws.com"
WAIT = "10"  # seconds: a token is logged within about a second of its issue


def cli(server: LiveServer, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``federation ARGS`` against ``server``, with ``key`` as the API key (none: no key)."""
    return invoke_cli(server, *args, env={"WARP_API_KEY": key} if key else {})
