"""The console secret: what session cookies are sealed and CSRF tokens made with.

``FEDERATION_CONSOLE_SECRET`` when set (replicas behind one load balancer share it);
otherwise 256 random bits kept in ``FEDERATION_CONSOLE_SECRET_FILE`` (mode 0600), made by
``init`` or the first ``serve`` and shared by that server's workers. Replacing it signs
every console user out; API keys are untouched.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from federation._internal.files import create_private, refuse_shared
from federation.errors import ConfigurationError
from federation.settings import Settings

MIN_SECRET_CHARS = 32


def console_secret(settings: Settings, *, create: bool = True) -> bytes:
    """The secret, from the setting or the file; the file is made when missing."""
    if settings.console_secret is not None:
        value = settings.console_secret.get_secret_value()
        if len(value) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"FEDERATION_CONSOLE_SECRET must be at least {MIN_SECRET_CHARS} characters "
                "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value.encode()
    path = settings.console_secret_file
    if create and not path.exists():
        create_private(path, f"{secrets.token_urlsafe(32)}\n".encode())
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        refuse_shared(path, "console secret")
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read console secret {path}: {exc.strerror}") from exc
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigurationError(f"console secret {path} is shorter than {MIN_SECRET_CHARS} bytes")
    return value
