"""federation: an OIDC identity-federation token issuer for agent runs.

The library's public surface is what ``__all__`` names; everything else is private to
the package and may change. Names load on first use, so that the CLI starts without
loading the web and database layers it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "federation.clock": ("Clock", "ManualClock", "SystemClock"),
    "federation.domain.durations": ("DurationPolicy", "Grant", "format_duration", "parse_duration"),
    "federation.errors": (
        "AuthenticationRequired",
        "ConfigurationError",
        "Conflict",
        "FederationError",
        "InternalError",
        "InvalidRequest",
        "MethodNotAllowed",
        "NotAuthorized",
        "OperationNotSupported",
        "ResourceNotFound",
        "ResourceUnavailable",
        "VerificationFailed",
    ),
    "federation.issuing.pipeline": ("IssueRequest", "TokenIssuer"),
    "federation.issuing.minting": ("IssuedToken",),
    "federation.keys": ("FileKeyStore", "KeyStore", "Keyring", "LocalSigner", "Signer"),
    "federation.settings": ("Settings", "load_settings"),
    "federation.domain.subjects": (
        "COMPONENTS",
        "SubjectContext",
        "SubjectRenderer",
        "parse_template",
    ),
    "federation.domain.tokens": ("Claims",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "COMPONENTS",
    "AuthenticationRequired",
    "Claims",
    "Clock",
    "ConfigurationError",
    "Conflict",
    "DurationPolicy",
    "FederationError",
    "FileKeyStore",
    "Grant",
    "InternalError",
    "InvalidRequest",
    "IssueRequest",
    "IssuedToken",
    "KeyStore",
    "Keyring",
    "LocalSigner",
    "ManualClock",
    "MethodNotAllowed",
    "NotAuthorized",
    "OperationNotSupported",
    "ResourceNotFound",
    "ResourceUnavailable",
    "Settings",
    "Signer",
    "SubjectContext",
    "SubjectRenderer",
    "SystemClock",
    "TokenIssuer",
    "VerificationFailed",
    "__version__",
    "format_duration",
    "load_settings",
    "parse_duration",
    "parse_template",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'federation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from federation.clock import Clock, ManualClock, SystemClock
    from federation.domain.durations import DurationPolicy, Grant, format_duration, parse_duration
    from federation.domain.subjects import (
        COMPONENTS,
        SubjectContext,
        SubjectRenderer,
        parse_template,
    )
    from federation.domain.tokens import Claims
    from federation.errors import (
        AuthenticationRequired,
        ConfigurationError,
        Conflict,
        FederationError,
        InternalError,
        InvalidRequest,
        MethodNotAllowed,
        NotAuthorized,
        OperationNotSupported,
        ResourceNotFound,
        ResourceUnavailable,
        VerificationFailed,
    )
    from federation.issuing.minting import IssuedToken
    from federation.issuing.pipeline import IssueRequest, TokenIssuer
    from federation.keys import FileKeyStore, Keyring, KeyStore, LocalSigner, Signer
    from federation.settings import Settings, load_settings
