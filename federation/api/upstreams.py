"""Clients of the clouds' services for the broker endpoints, made on first use."""

from __future__ import annotations

import threading
from typing import Any


class Upstreams:
    """Keeps one client per endpoint: making a botocore client costs tens of ms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aws_sts: dict[tuple[str | None, str | None], Any] = {}

    def aws_sts(self, region: str | None, endpoint_url: str | None) -> Any:
        key = (region, endpoint_url)
        with self._lock:
            client = self._aws_sts.get(key)
            if client is None:
                from federation.exchange import aws  # boto3 loads only when used

                client = self._aws_sts[key] = aws.sts_client(
                    region=region, endpoint_url=endpoint_url
                )
            return client
