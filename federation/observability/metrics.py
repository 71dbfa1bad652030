"""Prometheus metrics: tokens issued, errors, request latency, signing-key ages.

Every label value comes from a bounded set, since each distinct value is a new series
kept forever: audiences are reduced to the clouds' own (:func:`audience_label`), routes
are templates (never raw paths), methods are the standard ones, and key ages carry the
kids the JWKS already publishes. Nothing here names a principal, a run or a secret.

A server with several worker processes shares one directory of counter files
(prometheus_client's multiprocess mode, :mod:`federation.observability.metrics_files`); the worker a
scrape lands on sums every worker's files, so one scrape sees the whole server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from federation.clock import Clock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import BY_STATUS
from federation.keys import Keyring
from federation.keys.lifecycle import PUBLISHED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The audiences of the clouds' token exchanges; any other audience counts as "other".
_KNOWN_AUDIENCES = frozenset({"sts.amazonaws.com", "sts.amazonaws.com.cn", ENTRA_AUDIENCE})
_GCP_PREFIXES = ("//iam.googleapis.com/", "https://iam.googleapis.com/")
GCP = "gcp"  # one label for every GCP provider: each has its own audience
OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: from a JWKS answered before routing (well under a millisecond) to a broker
# call waiting on a cloud (seconds).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def audience_label(audience: str) -> str:
    """The audience as a label: a cloud's own audience, ``gcp``, or ``other``. Audiences
    are chosen by callers, so they are never a label as they are."""
    if audience in _KNOWN_AUDIENCES:
        return audience
    if audience.startswith(_GCP_PREFIXES):
        return GCP
    return OTHER


def error_code(status: int) -> str:
    """The Oz error code an answer of ``status`` carries."""
    kind = BY_STATUS.get(status)
    return kind.code if kind is not None else OTHER


class KeyAges:
    """``federation_signing_key_age_seconds``, computed from the keyring at scrape time:
    one sample per published key (``next``, ``active``, ``retired``)."""

    def __init__(self, keyring: Keyring, clock: Clock) -> None:
        self.keyring = keyring
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        """What :meth:`collect` yields, without reading the keyring (at registration)."""
        yield _key_ages()

    def collect(self) -> Iterator[Metric]:
        family = _key_ages()
        now = self.clock.now()
        for status in self.keyring.statuses():
            if status.state in PUBLISHED:
                record = status.record
                age = (now - record.created_at).total_seconds()
                family.add_metric([record.alg, record.kid, status.state.value], age)
        yield family


def _key_ages() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "federation_signing_key_age_seconds",
        "Seconds since each published signing key was created.",
        labels=["alg", "kid", "state"],
    )


class Metrics:
    """The issuer's metrics, and their exposition. In memory by default; with
    ``directory``, the exposition reads the counter files of every worker process
    (the process must write to that directory:
    :func:`federation.observability.metrics_files.share`)."""

    def __init__(self, keyring: Keyring, clock: Clock, *, directory: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        # NOTE: in multiprocess mode the metrics are read from the files, not from here
        own = self.registry if directory is None else None
        self.tokens = Counter(
            "federation_tokens_issued",
            "Tokens signed, by algorithm and audience (a cloud's, gcp, or other).",
            ["alg", "audience"],
            registry=own,
        )
        self.errors = Counter(
            "federation_errors",
            "Answers with an error status, by Oz error code and status.",
            ["code", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "federation_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by route template.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=own,
        )
        if directory is not None:
            MultiProcessCollector(self.registry, path=str(directory))  # type: ignore[no-untyped-call]
        self.registry.register(KeyAges(keyring, clock))
        # NOTE: label lookups take a lock and build tuples; each child is looked up once
        self._timers: dict[tuple[str, str], Histogram] = {}
        self._tokens: dict[tuple[str, str], Counter] = {}
        self._errors: dict[int, Counter] = {}

    def token_signed(self, alg: str, audience: str) -> None:
        key = (alg, audience_label(audience))
        counter = self._tokens.get(key)
        if counter is None:
            counter = self._tokens.setdefault(key, self.tokens.labels(*key))
        counter.inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request: ``route`` a template from a bounded set."""
        key = (route, method if method in METHODS else OTHER)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers.setdefault(key, self.latency.labels(*key))
        timer.observe(seconds)
        if status >= 400:
            counter = self._errors.get(status)
            if counter is None:
                counter = self._errors.setdefault(
                    status, self.errors.labels(error_code(status), str(status))
                )
            counter.inc()

    def exposition(self) -> bytes:
        """The Prometheus text format (reads the counter files in multiprocess mode)."""
        return generate_latest(self.registry)
