"""Settings, read from ``FEDERATION_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from federation._internal.networks import Networks, parse_networks
from federation._internal.urls import is_loopback
from federation.domain.durations import DurationPolicy, format_duration, parse_duration
from federation.domain.rates import Rate, parse_rate
from federation.domain.subjects import check_separator
from federation.errors import ConfigurationError, FederationError

# Verifiers' clocks drift; a retired key stays published this long past the last expiry.
VERIFIER_LEEWAY = timedelta(minutes=5)


def _seconds(value: Any) -> Any:
    """Accept ``90``, ``"90"``, the duration grammar (``"1h30m"``) or days (``"30d"``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        days = text.removesuffix("d")
        if days != text and days.isascii() and days.isdigit():
            return int(days) * 86400
        try:
            return parse_duration(text)
        except FederationError as exc:
            raise ValueError(exc.detail) from exc
    return value


Seconds = Annotated[int, BeforeValidator(_seconds), Field(gt=0)]
SecondsOrOff = Annotated[int, BeforeValidator(_seconds), Field(ge=0)]


def _rate(value: Any) -> Any:
    """``20/s,burst=40``, ``60/m``, ``off`` (see ``federation.rate_limits``)."""
    return parse_rate(value) if isinstance(value, str) else value


# NOTE: NoDecode: the environment's text goes to the validator, not to a JSON parser.
RateOrOff = Annotated[Rate | None, NoDecode, BeforeValidator(_rate)]


def _networks(value: Any) -> Any:
    """``10.0.0.5, 10.1.0.0/16, fd00::/8``: comma-separated addresses and networks."""
    return parse_networks(value) if isinstance(value, str) else value


NetworksSetting = Annotated[Networks, NoDecode, BeforeValidator(_networks)]


def _witnesses(value: Any) -> Any:
    """``URL KEY, URL KEY``: each witness's submission URL and note verifier key."""
    if not isinstance(value, str):
        return value
    found = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        url, _, key = item.partition(" ")
        key = key.strip()
        # NOTE: name+id+base64, whose base64 may hold "+" too; read in full at start-up
        parts = key.split("+", 2)
        if not url.startswith(("http://", "https://")) or len(parts) != 3 or " " in key:
            raise ValueError(
                "each witness is its URL and its verifier key (name+id+base64), separated "
                "by a space; witnesses are separated by commas"
            )
        found.append((url.rstrip("/"), key))
    return tuple(found)


Witnesses = Annotated[tuple[tuple[str, str], ...], NoDecode, BeforeValidator(_witnesses)]


class Settings(BaseSettings):
    """Everything configurable, from ``FEDERATION_*`` variables (docs/reference/settings.md)."""

    model_config = SettingsConfigDict(env_prefix="FEDERATION_", extra="ignore", frozen=True)

    issuer: str = Field(
        default="http://127.0.0.1:8080",
        description="Defaults to http://HOST:PORT, which suits a local issuer.",
    )
    database_url: str = "sqlite:///var/federation.db"
    keys_dir: Path = Path("keys")
    admin_key_file: Path = Path("var/admin-api-key")
    signing_alg: Literal["ES256", "RS256"] = "ES256"
    default_duration: Seconds = 3600
    min_duration: Seconds = 60
    max_duration: Seconds = 3 * 3600
    subject_separator: str = "/"
    audience_format: Literal["array", "string"] = "array"
    require_workload_token: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # After SIGTERM a worker answers on, each answer closing its connection, until no
    # request has come for a second or this time is up (federation.server.draining).
    shutdown_drain: SecondsOrOff = Field(default=5, le=300)
    jwks_max_age: Seconds = 300
    key_lead_time: Seconds = 3600
    clock_skew: int = Field(default=5, ge=0, le=300)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # Rate limits (federation.rate_limits): agents ask a few tokens per run; a loop
    # asking hundreds a second is cut down to these.
    rate_limit_key: RateOrOff = Rate(20, "s", burst=200)
    rate_limit_run: RateOrOff = Rate(5, "s", burst=100)
    rate_limit_auth_failures: RateOrOff = Rate(5, "s", burst=100)
    # API keys created per principal: a person or an orchestrator makes a few; a leaked
    # key looping on POST /api/v1/api-keys is held to this.
    rate_limit_key_creation: RateOrOff = Rate(1, "s", burst=30)
    # Proxies whose X-Forwarded-For names the client (federation.api.middleware.
    # client_address); none: the TCP peer is the client.
    trusted_proxies: NetworksSetting = ()
    redis_url: SecretStr | None = Field(
        default=None, description="Shared rate limits; unset: in this process."
    )
    key_store: Literal["file", "database", "aws-kms"] = "file"
    kek: SecretStr | None = Field(default=None, description="Key-encryption key (database store).")
    kms_region: str | None = None
    kms_endpoint_url: str | None = None
    key_rotation_period: SecondsOrOff = 30 * 86400
    rotation_check_interval: Seconds = 60
    aws_region: str = "us-east-1"
    aws_sts_endpoint_url: str | None = None
    gcp_sts_url: str = "https://sts.googleapis.com/v1/token"
    gcp_iam_url: str = "https://iamcredentials.googleapis.com"
    access_log: bool = Field(default=True, description="One JSON line per request (on|off).")
    metrics: Literal["admin", "public", "off"] = "admin"
    metrics_dir: Path = Path("var/metrics")
    console: bool = Field(default=True, description="The web console at /console (on|off).")
    api_docs: bool = Field(
        default=True, description="The API reference at /docs, served from the package (on|off)."
    )
    # NOTE: off by default: the schema is Oz's, and no client of it introspects
    graphql_introspection: bool = Field(
        default=False, description="GraphQL introspection on /graphql/v2 (on|off)."
    )
    transparency_log: bool = Field(
        default=True,
        description="Append every issued token to the transparency log (on|off).",
    )
    log_public: bool = Field(
        default=False,
        description="Serve the transparency log without an API key (on|off).",
    )
    # C2SP tlog-witnesses the log pushes its checkpoints to, and whose cosignatures
    # its checkpoint then carries (federation.api.witnessing)
    log_witnesses: Witnesses = ()
    log_origin: str | None = Field(
        default=None,
        description="The log's checkpoint origin; unset: the issuer's host and path + /log.",
    )
    console_secret: SecretStr | None = Field(
        default=None, description="Seals console sessions; unset: console_secret_file."
    )
    console_secret_file: Path = Path("var/console-secret")

    @model_validator(mode="before")
    @classmethod
    def _default_issuer(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("issuer") and ("host" in data or "port" in data):
            host = str(data.get("host", "127.0.0.1"))
            shown = f"[{host}]" if ":" in host else host
            return {**data, "issuer": f"http://{shown}:{data.get('port', 8080)}"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_log(cls, data: Any) -> Any:
        # NOTE: the aws-kms store without a KEK has nowhere to keep the log's key: the
        # log is off unless asked for (and then refused below, saying what to set)
        if (
            isinstance(data, dict)
            and "transparency_log" not in data
            and data.get("key_store") == "aws-kms"
            and not data.get("kek")
        ):
            return {**data, "transparency_log": False}
        return data

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return check_issuer(value)

    @field_validator("subject_separator")
    @classmethod
    def _separator(cls, value: str) -> str:
        return check_separator(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.min_duration <= self.default_duration <= self.max_duration:
            raise ValueError(
                f"FEDERATION_MIN_DURATION ({format_duration(self.min_duration)}), "
                f"FEDERATION_DEFAULT_DURATION ({format_duration(self.default_duration)}) and "
                f"FEDERATION_MAX_DURATION ({format_duration(self.max_duration)}) must satisfy "
                "minimum <= default <= maximum"
            )
        if self.key_rotation_period and self.key_rotation_period <= self.key_lead_time:
            raise ValueError(
                "FEDERATION_KEY_ROTATION_PERIOD must be longer than FEDERATION_KEY_LEAD_TIME: "
                "a key is published one lead time before it signs"
            )
        if self.key_store == "database" and self.kek is None:
            raise ValueError(
                "FEDERATION_KEY_STORE=database needs FEDERATION_KEK, the key-encryption key "
                "(create one with `federation keys new-kek`)"
            )
        if self.key_store == "aws-kms" and self.transparency_log and self.kek is None:
            raise ValueError(
                "FEDERATION_KEY_STORE=aws-kms keeps the transparency log's Ed25519 key in the "
                "database, sealed with FEDERATION_KEK: set one (`federation keys new-kek`) or "
                "turn the log off (FEDERATION_TRANSPARENCY_LOG=off)"
            )
        if self.key_lead_time <= self.jwks_max_age:
            raise ValueError(
                "key_lead_time must be longer than jwks_max_age (FEDERATION_KEY_LEAD_TIME="
                f"{format_duration(self.key_lead_time)}, FEDERATION_JWKS_MAX_AGE="
                f"{format_duration(self.jwks_max_age)}), or verifiers with a cached JWKS would "
                "see tokens signed by a key they do not know yet"
            )
        return self

    def duration_policy(self) -> DurationPolicy:
        return DurationPolicy(
            default=self.default_duration, minimum=self.min_duration, maximum=self.max_duration
        )

    @property
    def verification_window(self) -> timedelta:
        """How long a key stays published after it stops signing."""
        return timedelta(seconds=self.max_duration + self.clock_skew) + VERIFIER_LEEWAY

    @property
    def log_url(self) -> str:
        """Where the transparency log is served: ``<issuer>/log/``."""
        return f"{self.issuer}/log/"

    @property
    def checkpoint_origin(self) -> str:
        """The log's origin line: ``FEDERATION_LOG_ORIGIN``, else the issuer's host and
        path (no scheme) with ``/log``, as C2SP checkpoints name logs."""
        if self.log_origin:
            return self.log_origin
        return self.issuer.split("://", 1)[-1].rstrip("/") + "/log"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"


_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*/?")


def check_issuer(value: str) -> str:
    """An issuer verifiers can match byte for byte: https (http only on loopback),
    no query, fragment, credentials or trailing slash."""
    parts = urlsplit(value)
    if not value.startswith(("https://", "http://")) or not parts.hostname:
        raise ValueError(f"issuer {value!r} must be an absolute https URL")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"issuer {value!r} may not contain spaces or control characters")
    if any(mark in value for mark in "?#") or "@" in parts.netloc:
        raise ValueError(f"issuer {value!r} may not carry a query, fragment or credentials")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"issuer {value!r} has an invalid port") from exc
    if parts.netloc.endswith(":") or port == {"https": 443, "http": 80}[parts.scheme]:
        raise ValueError(
            f"issuer {value!r}: drop the empty or default port (verifiers compare bytes)"
        )
    if parts.netloc != parts.netloc.lower():
        raise ValueError(
            f"issuer {value!r}: write the host in lower case (verifiers compare bytes)"
        )
    segments = parts.path.split("/")[1:]
    if not _PATH.fullmatch(parts.path) or any(s in {".", ".."} for s in segments):
        raise ValueError(
            f"issuer {value!r}: a path may hold only letters, digits and . _ ~ - between "
            "slashes, with no . or .. segments"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"issuer {value!r} must use https; plain http is allowed only on a loopback "
            "address such as 127.0.0.1 (set FEDERATION_ISSUER to the public https URL)"
        )
    if value.endswith("/"):
        raise ValueError(
            f"issuer {value!r} ends with '/': AWS and Entra compare the issuer byte for "
            "byte, so drop the trailing slash"
        )
    return value


def _variable(location: tuple[int | str, ...]) -> str:
    """``FEDERATION_<FIELD>: ``; nothing for checks across fields, which name theirs."""
    name = "_".join(str(part) for part in location).upper()
    return f"FEDERATION_{name}: " if name else ""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with errors as one readable ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            _variable(error["loc"]) + error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_input=False)
        )
        raise ConfigurationError(problems) from None
