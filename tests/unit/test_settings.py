"""Settings: defaults, the issuer rules, durations, consistency, and the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from federation.errors import ConfigurationError
from federation.settings import Settings, check_issuer, load_settings


def refused(**overrides: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(**overrides)
    assert raised.value.detail is not None
    return raised.value.detail


def test_defaults() -> None:
    settings = load_settings()
    assert settings.issuer == "http://127.0.0.1:8080"
    assert settings.database_url == "sqlite:///var/federation.db"
    assert settings.keys_dir == Path("keys")
    assert settings.admin_key_file == Path("var/admin-api-key")
    assert settings.signing_alg == "ES256"
    assert (settings.min_duration, settings.default_duration, settings.max_duration) == (
        60,
        3600,
        3 * 3600,
    )
    assert settings.subject_separator == "/"
    assert settings.audience_format == "array"
    assert settings.require_workload_token is True
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.jwks_uri == "http://127.0.0.1:8080/.well-known/jwks.json"


def test_duration_policy_follows_the_settings() -> None:
    policy = load_settings(min_duration="2m", default_duration="30m", max_duration="2h")
    grant = policy.duration_policy().grant(3 * 3600)
    assert (grant.seconds, grant.capped) == (7200, True)


def test_verification_window_covers_the_longest_token() -> None:
    settings = load_settings(max_duration="2h", clock_skew=10)
    assert settings.verification_window > timedelta(hours=2, seconds=10)


# ---- issuer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://issuer.example.com",
        "https://issuer.example.com:8443",
        "https://example.com/federation",
        "http://127.0.0.1:8080",
        "http://127.0.0.53",
        "http://localhost:8080",
        "http://localhost",
        "http://[::1]:8080",
    ],
)
def test_issuer_accepted(issuer: str) -> None:
    assert check_issuer(issuer) == issuer
    assert load_settings(issuer=issuer).issuer == issuer


@pytest.mark.parametrize(
    ("issuer", "why"),
    [
        ("http://issuer.example.com", "https"),
        ("http://10.0.0.1:8080", "https"),
        ("http://0.0.0.0:8080", "https"),
        ("http://localhost.example.com", "https"),
        ("ftp://issuer.example.com", "https"),
        ("issuer.example.com", "https"),
        ("https://", "https"),
        ("https://issuer.example.com/", "trailing slash"),
        ("https://example.com/federation/", "trailing slash"),
        ("https://issuer.example.com?x=1", "query"),
        ("https://issuer.example.com#top", "fragment"),
        ("https://user:secret@issuer.example.com", "credentials"),
        ("https://user@issuer.example.com", "credentials"),
    ],
)
def test_issuer_refused(issuer: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"https|query|'/'"):
        check_issuer(issuer)
    assert "FEDERATION_ISSUER" in refused(issuer=issuer), why


@pytest.mark.parametrize(
    "issuer",
    [
        "https://issuer.example.com?",  # an empty query is still a query
        "https://issuer.example.com#",  # an empty fragment is still a fragment
        "https://@issuer.example.com",  # empty credentials
        "https://issuer.example.com ",  # would never match byte for byte
    ],
)
def test_issuer_with_empty_or_invisible_extras_is_refused(issuer: str) -> None:
    # jwks_uri is issuer + "/.well-known/jwks.json": with a trailing "?" or "#" the
    # published JWKS address would point somewhere else entirely.
    with pytest.raises(ValueError):  # noqa: PT011 - any refusal will do
        check_issuer(issuer)


def test_issuer_is_derived_from_host_and_port() -> None:
    assert load_settings(port=9000).issuer == "http://127.0.0.1:9000"
    assert load_settings(host="localhost", port=9001).issuer == "http://localhost:9001"
    assert load_settings(host="::1").issuer == "http://[::1]:8080"


def test_explicit_issuer_wins_over_host_and_port() -> None:
    settings = load_settings(issuer="https://issuer.example.com", host="10.0.0.5", port=9000)
    assert settings.issuer == "https://issuer.example.com"
    assert settings.port == 9000


def test_issuer_derived_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATION_PORT", "9100")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.issuer == "http://127.0.0.1:9100"


# ---- durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1h30m", 5400), ("90m", 5400), ("5400", 5400), (5400, 5400), (" 2h ", 7200)],
)
def test_durations_accept_grammar_or_seconds(value: object, seconds: int) -> None:
    assert load_settings(default_duration=value).default_duration == seconds


@pytest.mark.parametrize("value", ["1.5h", "abc", "-60", "0", 0, -5, "1h1h"])
def test_bad_duration_names_the_variable(value: object) -> None:
    assert "FEDERATION_DEFAULT_DURATION" in refused(default_duration=value)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"min_duration": "2h"}, "FEDERATION_MIN_DURATION"),
        ({"default_duration": "30s"}, "FEDERATION_DEFAULT_DURATION"),
        ({"max_duration": "30m"}, "FEDERATION_MAX_DURATION"),
    ],
)
def test_min_default_max_must_be_ordered(overrides: dict[str, Any], variable: str) -> None:
    message = refused(**overrides)
    assert "minimum <= default <= maximum" in message
    # The operator must learn which variable to change.
    assert variable in message


def test_ordered_durations_may_be_equal() -> None:
    settings = load_settings(min_duration="1h", default_duration="1h", max_duration="1h")
    assert settings.duration_policy().grant(None).seconds == 3600


def test_key_lead_time_must_exceed_jwks_max_age() -> None:
    message = refused(jwks_max_age="10m", key_lead_time="10m")
    assert "key_lead_time must be longer than jwks_max_age" in message
    assert "FEDERATION_KEY_LEAD_TIME" in message
    settings = load_settings(jwks_max_age="10m", key_lead_time="11m")
    assert settings.key_lead_time == 660


# ---- other fields ---------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["|", "#", "~"])
def test_separator_accepted(separator: str) -> None:
    assert load_settings(subject_separator=separator).subject_separator == separator


@pytest.mark.parametrize("separator", ["%", "*", "?", "", "ab", "x"])
def test_separator_refused(separator: str) -> None:
    assert "FEDERATION_SUBJECT_SEPARATOR" in refused(subject_separator=separator)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"signing_alg": "HS256"}, "FEDERATION_SIGNING_ALG"),
        ({"audience_format": "list"}, "FEDERATION_AUDIENCE_FORMAT"),
        ({"port": 0}, "FEDERATION_PORT"),
        ({"port": 70000}, "FEDERATION_PORT"),
        ({"clock_skew": 301}, "FEDERATION_CLOCK_SKEW"),
    ],
)
def test_invalid_values_name_the_variable(overrides: dict[str, Any], variable: str) -> None:
    assert variable in refused(**overrides)


def test_every_problem_is_in_one_error() -> None:
    message = refused(signing_alg="none", port=0, subject_separator="%")
    for variable in ("FEDERATION_SIGNING_ALG", "FEDERATION_PORT", "FEDERATION_SUBJECT_SEPARATOR"):
        assert variable in message


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEDERATION_ISSUER", "https://issuer.example.com")
    monkeypatch.setenv("FEDERATION_DATABASE_URL", "postgresql+psycopg://app@db/federation")
    monkeypatch.setenv("FEDERATION_KEYS_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("FEDERATION_SIGNING_ALG", "RS256")
    monkeypatch.setenv("FEDERATION_MAX_DURATION", "2h30m")
    monkeypatch.setenv("FEDERATION_DEFAULT_DURATION", "900")
    monkeypatch.setenv("FEDERATION_SUBJECT_SEPARATOR", "|")
    monkeypatch.setenv("FEDERATION_AUDIENCE_FORMAT", "string")
    monkeypatch.setenv("FEDERATION_REQUIRE_WORKLOAD_TOKEN", "false")
    settings = load_settings()
    assert settings.issuer == "https://issuer.example.com"
    assert settings.database_url == "postgresql+psycopg://app@db/federation"
    assert settings.keys_dir == tmp_path / "k"
    assert settings.signing_alg == "RS256"
    assert settings.max_duration == 9000
    assert settings.default_duration == 900
    assert settings.subject_separator == "|"
    assert settings.audience_format == "string"
    assert settings.require_workload_token is False


def test_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATION_ISSUER", "http://issuer.example.com")
    message = refused()
    assert "FEDERATION_ISSUER" in message
    assert "https" in message


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDERATION_SIGNING_ALG", "RS256")
    assert load_settings(signing_alg="ES256").signing_alg == "ES256"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)
