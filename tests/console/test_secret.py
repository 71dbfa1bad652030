"""The console secret: made once with mode 0600, refused when others can read it, and
taken from FEDERATION_CONSOLE_SECRET when set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from federation.console.secret import console_secret
from federation.errors import ConfigurationError
from tests.conftest import make_settings


def test_made_once_private_then_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = console_secret(settings)
    path = settings.console_secret_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(first) >= 32
    assert console_secret(settings) == first


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    console_secret(settings)
    settings.console_secret_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="accessible to other users"):
        console_secret(settings)


def test_the_setting_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, console_secret="r" * 40)
    assert console_secret(settings) == b"r" * 40
    assert not settings.console_secret_file.exists()
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        console_secret(make_settings(tmp_path, console_secret="short"))


def test_init_makes_it(tmp_path: Path) -> None:
    from federation.clock import SystemClock
    from federation.server.runtime import initialize

    settings = make_settings(tmp_path)
    initialize(settings, SystemClock())
    assert stat.S_IMODE(settings.console_secret_file.stat().st_mode) == 0o600
